"""Seeded simulated environments, to try a loop's policy before real traffic.

Every environment of :data:`ENVIRONMENTS` builds round ``t`` from ``(seed, t)`` alone
and knows each candidate's expected reward, so regret is exact; :func:`run_policy`
plays a policy in one. :class:`LinearStream` reads the linear model as one seeded
sequence of contexts and rewards (:func:`run_stream` plays it); :class:`EngagementEnv`
is sequential: users' sessions where a choice changes later rewards, for offline RL;
:class:`PositionEnv` shows lists, whose lower places are clicked less.
Pure: no I/O (the scikit-learn datasets are read from the installed package).

>>> env = make_environment({"type": "treatments", "seed": 3})
>>> rnd = env.round(0)
>>> rnd.ids, rnd.optimal == float(max(rnd.expected))
(['hero-a', 'hero-b', 'hero-c', 'hero-d'], True)
>>> env.round(0).context == rnd.context
True
"""
from __future__ import annotations

import inspect

from ..errors import ConfigError
from .base import Environment, NonStationary, Round
from .catalogue import CatalogueEnv
from .engagement import EngagementEnv
from .positions import PositionEnv
from .run import run_policy
from .stream import LinearStream, run_stream
from .supervised import SKLEARN_DATASETS, SupervisedEnv
from .synthetic import LinearEnv, LogisticEnv
from .trajectory import Trajectory
from .treatments import TreatmentEnv

#: Environment types by name, for :func:`make_environment`.
ENVIRONMENTS = {"linear": LinearEnv, "logistic": LogisticEnv, "treatments": TreatmentEnv,
                "catalogue": CatalogueEnv, "positions": PositionEnv,
                "supervised": SupervisedEnv.from_sklearn}


def make_environment(spec: dict) -> Environment:
    """Build from ``{"type": name, **params}``; ``change_at`` makes it non-stationary.

    ``{"type": "supervised", "dataset": "digits"}`` loads a scikit-learn dataset.
    Unknown types or parameters raise :class:`ConfigError` naming the key.
    """
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in ENVIRONMENTS:
        raise ConfigError("env.type", f"unknown environment {kind!r}", list(ENVIRONMENTS))
    change_at = spec.pop("change_at", None)
    allowed = list(inspect.signature(ENVIRONMENTS[kind]).parameters)
    for key in spec:
        if key not in allowed:
            raise ConfigError(f"env.{key}", f"unknown parameter of {kind!r}", allowed)
    try:
        env = ENVIRONMENTS[kind](**spec)
    except ConfigError as exc:
        raise ConfigError(f"env.{exc.key}", exc.message, exc.allowed) from exc
    return env if change_at is None else NonStationary(env, change_at)


__all__ = ["CatalogueEnv", "ENVIRONMENTS", "EngagementEnv", "Environment", "LinearEnv",
           "LinearStream", "LogisticEnv", "NonStationary", "PositionEnv", "Round",
           "SKLEARN_DATASETS", "SupervisedEnv", "Trajectory", "TreatmentEnv", "make_environment",
           "run_policy", "run_stream"]
