"""The records that cross the policy interface: Decision out, Feedback in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import FeatureError
from .inputs import check_value, describe


@dataclass(frozen=True)
class Decision:
    """A policy's answer for one request.

    Attributes
    ----------
    action_ids : tuple of str, length K
        The candidate ids, in request order.
    pmf : ndarray of shape (K,)
        Probability of choosing each action; sums to 1. ``pmf[i]`` is the
        propensity that is logged if action ``i`` is drawn.
    scores : ndarray of shape (K,)
        The policy's per-action scores (estimated reward, UCB, ...); higher is better.
    policy : str
        Registered name of the policy that decided.
    """

    action_ids: tuple
    pmf: np.ndarray
    scores: np.ndarray
    policy: str

    def ranking(self):
        """Action indices by descending score, ties broken by probability then order."""
        scores, pmf = self.scores.tolist(), self.pmf.tolist()
        return sorted(range(len(pmf)), key=lambda i: (-scores[i], -pmf[i], i))


@dataclass(frozen=True)
class Feedback:
    """One rewarded decision: what ``learn`` consumes.

    ``chosen`` indexes ``actions``; ``propensity`` is the probability the logging
    policy gave the chosen action; ``reward`` is higher-is-better (VW's cost is −reward).
    """

    context: Mapping[str, Any]
    actions: Sequence[Any]
    chosen: int
    propensity: float
    reward: float

    def __post_init__(self):
        if not isinstance(self.actions, (list, tuple)) or not self.actions:
            raise FeatureError("actions", "must be a non-empty list of actions")
        if isinstance(self.chosen, bool) or not isinstance(self.chosen, (int, np.integer)):
            raise FeatureError("chosen", f"must be an integer index, got {describe(self.chosen)}")
        if not 0 <= self.chosen < len(self.actions):
            raise FeatureError("chosen", f"index {self.chosen} outside 0..{len(self.actions) - 1}")
        p = self.propensity
        if not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
            raise FeatureError("propensity", f"must be in (0, 1], got {describe(p)}")
        check_value(self.reward, "reward")
