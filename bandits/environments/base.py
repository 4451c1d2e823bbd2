"""What every simulated environment shares: a round, its exact expected rewards, and
the non-stationary wrapper.

A round is a pure function of ``(seed, t)``: the same environment gives the same
contexts, candidates and reward draws in every run and in any order, whatever the
policy did before. Rewards of one round are drawn from ``(seed, t, action)`` too, so
two policies compared on one environment see common random numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError
from ..params import check_int


@dataclass(frozen=True)
class Round:
    """One request: the context, the candidate actions and their true expected rewards.

    Attributes
    ----------
    t : int
        Round index.
    context : dict
        What a policy (or the service) is given.
    actions : list of dict
        ``{"id": str, "features": {...}}`` per candidate, in request order.
    expected : ndarray (K,)
        Expected reward of each candidate, known exactly.
    noise : float or None
        Standard deviation of Gaussian reward noise; ``None`` for Bernoulli rewards
        (``expected`` then holds click probabilities).
    key : tuple of int
        Seed of the round's reward draws.
    """

    t: int
    context: dict
    actions: list
    expected: np.ndarray
    noise: float | None
    key: tuple

    @property
    def ids(self) -> list:
        return [a["id"] for a in self.actions]

    @property
    def optimal(self) -> float:
        """The best expected reward any policy could get in this round."""
        return float(self.expected.max())

    @property
    def uniform(self) -> float:
        """The expected reward of a uniformly random choice."""
        return float(self.expected.mean())

    def reward(self, k: int, rng: np.random.Generator | None = None) -> float:
        """An observed reward for candidate ``k``: seeded by (round, k) unless ``rng``."""
        rng = rng if rng is not None else np.random.default_rng((*self.key, 1, k))
        mu = float(self.expected[k])
        if self.noise is None:
            return float(rng.random() < mu)
        return mu + float(rng.normal(0.0, self.noise))


class Environment:
    """Base of the environments: ``round(t)`` builds round ``t`` from ``(seed, t)``.

    Subclasses implement ``_round(t, rng)`` and set ``actions`` to the fixed action
    list (or ``None`` when each request has its own candidates).
    """

    name = "environment"
    actions: list | None = None

    def __init__(self, seed: int = 0):
        self.seed = check_int("seed", seed, 0)

    def round(self, t: int) -> Round:
        return self._round(t, np.random.default_rng((self.seed, t)))

    def rounds(self, n: int, start: int = 0):
        """Rounds ``start .. start+n-1``."""
        for t in range(start, start + n):
            yield self.round(t)

    def _round(self, t: int, rng: np.random.Generator) -> Round:
        raise NotImplementedError

    def _make(self, t, context, actions, expected, noise=None) -> Round:
        return Round(t, context, actions, np.asarray(expected, dtype=float), noise, (self.seed, t))

    def describe(self) -> str:
        return self.name


class NonStationary(Environment):
    """``env`` until round ``change_at``; from then on every candidate's expected reward
    is that of its mirror image in the candidate list (reversed order), so the best
    action changes in every context where the best is not the middle one.
    """

    def __init__(self, env: Environment, change_at: int):
        super().__init__(env.seed)
        self.env = env
        self.change_at = check_int("change_at", change_at, 0)
        self.actions = env.actions
        self.name = f"{env.name} (changes at {change_at})"

    def round(self, t: int) -> Round:
        base = self.env.round(t)
        return base if t < self.change_at else replace(base, expected=base.expected[::-1].copy())

    def describe(self) -> str:
        return f"{self.env.describe()}, reversed at round {self.change_at}"


def check_ids(key: str, ids, low: int = 2, high: int | None = None) -> list:
    """A list of distinct non-empty action ids, ``low``..``high`` of them."""
    ids = list(ids)
    if not all(isinstance(a, str) and a for a in ids) or len(set(ids)) != len(ids):
        raise ConfigError(key, "must be distinct non-empty strings")
    if len(ids) < low or (high is not None and len(ids) > high):
        raise ConfigError(key, f"needs {low}..{high or 'any'} actions, got {len(ids)}")
    return ids
