"""The policy interface every cbserve policy implements.

``Policy.decide`` validates the request, calls the subclass's ``_decide`` hook and
builds the :class:`~bandits.types.Decision`; ``learn`` validates feedback and calls
``_learn``; snapshots go through :mod:`bandits.snapshot`. Subclasses store their
constructor arguments under the same names (so ``get_params`` can rebuild them)
and end learned attributes with ``_``.
"""
from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np

from .errors import FeatureError, SnapshotError
from .featurizer import Featurizer
from .inputs import check_context, normalize_actions
from .snapshot import pack, unpack
from .types import Decision, Feedback


class Policy(abc.ABC):
    """Base class: ``decide(context, actions)``, ``learn(batch)``, ``to_bytes``/``from_bytes``."""

    #: Registered name, reported in every Decision.
    name: ClassVar[str] = "policy"

    def decide(self, context: Any, actions: Any) -> Decision:
        """The pmf over ``actions`` and their scores for this context. Pure: no sampling."""
        pairs = normalize_actions(actions)
        scores, pmf = self._decide(check_context(context), pairs)
        return Decision(tuple(aid for aid, _ in pairs), pmf, scores, self.name)

    def decide_pairs(self, context: dict, pairs: list) -> Decision:
        """:meth:`decide` for input already validated by :func:`~bandits.inputs.check_context`
        and :func:`~bandits.inputs.normalize_actions` (a list of ``(id, features)``), so a
        caller that validated a request once does not pay for it twice. Feature values are
        still checked while featurizing (a bad one raises :class:`FeatureError` naming it).

        A subclass outside this package that overrides :meth:`decide` is asked through
        it: its own ``decide`` is the policy.

        >>> from bandits import make_policy
        >>> p = make_policy({"type": "epsilon_greedy", "epsilon": 0.2})
        >>> p.decide_pairs({}, [("a", {}), ("b", {})]).pmf.tolist()
        [0.5, 0.5]
        """
        if not type(self).decide.__module__.startswith("bandits."):
            return self.decide(context, [{"id": aid, "features": feats} for aid, feats in pairs])
        scores, pmf = self._decide(context, pairs)
        return Decision(tuple(aid for aid, _ in pairs), pmf, scores, self.name)

    def learn(self, feedback_batch: Iterable[Feedback | Mapping]) -> None:
        """Update from rewarded decisions (``Feedback`` records or equivalent mappings)."""
        batch = [as_feedback(fb, f"feedback[{i}]") for i, fb in enumerate(feedback_batch)]
        if batch:
            self._learn(batch)

    @abc.abstractmethod
    def _decide(self, context: dict, pairs: list) -> tuple:
        """Return ``(scores, pmf)``, both (K,) float64, for validated input."""

    @abc.abstractmethod
    def _learn(self, batch: list) -> None:
        """Update from a non-empty list of validated :class:`Feedback`."""

    @abc.abstractmethod
    def _get_state(self) -> tuple:
        """``(state, arrays)``: JSON-able values and named numpy arrays of learned state."""

    @abc.abstractmethod
    def _set_state(self, state: dict, arrays: dict) -> None:
        """Restore what :meth:`_get_state` returned."""

    def get_params(self) -> dict:
        """Constructor arguments by name, JSON-ready (a Featurizer becomes its config)."""
        params = {}
        for pname in inspect.signature(type(self).__init__).parameters:
            if pname == "self":
                continue
            value = getattr(self, pname)
            params[pname] = value.get_config() if isinstance(value, Featurizer) else value
        return params

    def to_bytes(self) -> bytes:
        """A full snapshot in the :mod:`bandits.snapshot` format (never pickle)."""
        state, arrays = self._get_state()
        return pack(type_name(type(self)), self.get_params(), state, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Policy":
        """Rebuild a policy from :meth:`to_bytes`; it decides exactly as the original."""
        meta, arrays = unpack(data)
        if meta["type"] != type_name(cls):
            raise SnapshotError(f"snapshot holds a {meta['type']!r} policy, not {type_name(cls)!r}")
        try:
            policy = cls(**meta["params"])
            policy._set_state(meta["state"], arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"corrupt {meta['type']} snapshot: {exc}") from exc
        return policy


def as_feedback(item: Any, field: str) -> Feedback:
    """A Feedback record from a Feedback or a mapping with the same keys."""
    if isinstance(item, Feedback):
        return item
    if not isinstance(item, Mapping):
        raise FeatureError(field, "must be a Feedback or an object with context, actions, "
                                  "chosen, propensity, reward")
    missing = [k for k in ("actions", "chosen", "propensity", "reward") if k not in item]
    if missing:
        raise FeatureError(field, f"missing {', '.join(missing)}")
    return Feedback(item.get("context") or {}, item["actions"], item["chosen"],
                    item["propensity"], item["reward"])


def type_name(cls: type) -> str:
    """Registry name of a built-in policy class, ``module:Class`` for any other."""
    from .registry import BUILTINS  # the registry imports the policies, which import us

    target = BUILTINS.get(getattr(cls, "name", None))
    if target == f"{cls.__module__}:{cls.__qualname__}":
        return cls.name
    return f"{cls.__module__}:{cls.__qualname__}"


def chosen_pair(fb: Feedback, field: str = "feedback") -> tuple:
    """``(id, features)`` of the chosen action of a feedback record, validated."""
    pairs = normalize_actions(fb.actions, f"{field}.actions")
    return pairs[fb.chosen]


def as_pmf(values: np.ndarray) -> np.ndarray:
    """float64 copy of a probability vector renormalised to sum to 1."""
    p = np.asarray(values, dtype=np.float64)
    return p / p.sum()
