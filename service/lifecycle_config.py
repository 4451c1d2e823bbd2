"""A loop's challengers, their evaluation window and its promotion rule, validated.

.. code-block:: toml

    [loops.recs.evaluation]
    window = 50000          # the last N joined events challengers are judged on
    burn_in = 1000          # events a new challenger learns before it is judged
    [loops.recs.promotion]
    mode = "manual"         # or "auto": the learner promotes by the gate on its own
    [[loops.recs.challengers]]
    name = "linucb"
    policy = {type = "linucb", alpha = 1.0}

A challenger learns from the loop's joined events beside the champion and never serves
(:mod:`service.challenger_learner`); the gate (:func:`service.challengers.gate`) decides
whether one may replace it. Errors name the key (``loops.recs.challengers[1].name``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .monitoring_config import merged, number

EVALUATION_DEFAULTS = {
    "window": 50_000,        # joined events the figures are computed over (the last ones)
    "burn_in": 1000,         # events a new challenger learns before it is judged
}
PROMOTION_DEFAULTS = {
    "mode": "manual",        # "auto": the learner promotes a challenger that passes the gate
    "min_events": 1000,      # events in the window before the gate may pass
    "min_ess": 100.0,        # effective sample size of the challenger's importance weights
    "margin": 0.0,           # the lower bound must beat the champion by this much
    "estimator": "dr",       # "dr" or "snips": whose interval the gate reads
    "interval": 60.0,        # seconds between two automatic gate checks of a loop
}
MODES = ("manual", "auto")
GATE_ESTIMATORS = ("dr", "snips")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


@dataclass(frozen=True)
class Challenger:
    """A policy that learns beside the champion: ``name``, ``policy`` and ``featurizer``
    specifications (the featurizer defaults to the loop's)."""

    name: str
    policy: dict
    featurizer: dict


def parse_evaluation(spec, key: str, duration, integer) -> dict:
    """The ``evaluation`` table with defaults filled in."""
    s = merged(spec, EVALUATION_DEFAULTS, key)
    return {"window": integer(s["window"], key + ".window", 100),
            "burn_in": integer(s["burn_in"], key + ".burn_in", 0)}


def parse_promotion(spec, key: str, duration, integer) -> dict:
    """The ``promotion`` table with defaults filled in."""
    s = merged(spec, PROMOTION_DEFAULTS, key)
    if s["mode"] not in MODES:
        raise ConfigError(key + ".mode", f"must be one of {', '.join(MODES)}, got {s['mode']!r}")
    if s["estimator"] not in GATE_ESTIMATORS:
        raise ConfigError(key + ".estimator", f"must be one of {', '.join(GATE_ESTIMATORS)}, "
                                              f"got {s['estimator']!r}")
    return {"mode": s["mode"], "min_events": integer(s["min_events"], key + ".min_events", 1),
            "min_ess": number(s["min_ess"], key + ".min_ess", 1.0, None),
            "margin": number(s["margin"], key + ".margin", None, None),
            "estimator": s["estimator"], "interval": duration(s["interval"], key + ".interval")}


def parse_challengers(spec, key: str, featurizer: dict, check_policy) -> tuple:
    """The ``challengers`` array as :class:`Challenger` records; ``check_policy(policy,
    featurizer, key)`` validates each specification and returns it completed."""
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise ConfigError(key, "must be an array of tables ([[loops.<name>.challengers]])")
    out, seen = [], set()
    for i, item in enumerate(spec):
        at = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(at, "must be a table with name and policy")
        for field in item:
            if field not in ("name", "policy", "featurizer"):
                raise ConfigError(f"{at}.{field}", "unknown key", ["name", "policy", "featurizer"])
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(at + ".name", "required: 1-64 characters, letters, digits, "
                                            "'_', '.', '-'")
        if name in seen:
            raise ConfigError(at + ".name", f"{name!r} names two challengers")
        seen.add(name)
        if not isinstance(item.get("policy"), dict):
            raise ConfigError(at + ".policy", "required: a table such as {type = 'linucb'}")
        feats = item.get("featurizer", featurizer)
        if not isinstance(feats, dict):
            raise ConfigError(at + ".featurizer", "must be a table")
        out.append(Challenger(name, check_policy(dict(item["policy"]), dict(feats), at),
                              dict(feats)))
    return tuple(out)
