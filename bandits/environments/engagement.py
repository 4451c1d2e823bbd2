"""A seeded recommendation-session environment where a greedy choice costs later reward.

Each episode is one user's session of up to ``horizon`` steps. The user has an
``affinity`` in [-1, 1] (which of the two deep items suits them) and an engagement
``e`` in [0, 1], both observed in the context. At each step the service shows one of
four items: the two *click-bait* items are clicked with probability 0.25 + 0.5·e
(± 0.05·affinity) and lower engagement by 0.12; the two *deep* items are clicked with
probability 0.05 + 0.5·e (± 0.1·affinity) but raise it by 0.08. After each step the
user leaves with probability ``leave``·(1 − e). So bait always wins the current step
by at least 0.1 — what every bandit learns — while a policy that builds engagement
first earns far more per session. Pure and seeded: same seed, same trajectory.

Examples
--------
>>> env = EngagementEnv(seed=3)
>>> ctx = env.reset()
>>> sorted(ctx["user"])
['affinity', 'engagement']
>>> env.click_probability("bait-1") - env.click_probability("deep-1") >= 0.1 - 1e-12
True
"""
from __future__ import annotations

import numpy as np

ACTIONS = ("bait-1", "bait-2", "deep-1", "deep-2")
_BASE = {"bait-1": 0.25, "bait-2": 0.25, "deep-1": 0.05, "deep-2": 0.05}
_AFFINITY = {"bait-1": 0.05, "bait-2": -0.05, "deep-1": 0.1, "deep-2": -0.1}
_EFFECT = {"bait-1": -0.12, "bait-2": -0.12, "deep-1": 0.08, "deep-2": 0.08}


class EngagementEnv:
    """Sessions of ``reset()`` then ``step(action)`` until ``done``."""

    actions = ACTIONS

    def __init__(self, horizon: int = 10, leave: float = 0.15, seed: int = 0):
        self.horizon, self.leave = horizon, leave
        self._rng = np.random.default_rng(seed)
        self.affinity = self.engagement = 0.0
        self.t = 0

    def reset(self) -> dict:
        """Start a new user's session; returns its first context."""
        self.affinity = float(self._rng.uniform(-1.0, 1.0))
        self.engagement = float(self._rng.uniform(0.3, 0.7))
        self.t = 0
        return self.context()

    def context(self) -> dict:
        return {"user": {"affinity": round(self.affinity, 3),
                         "engagement": round(self.engagement, 3)}}

    def click_probability(self, action: str) -> float:
        """Expected reward of showing ``action`` now."""
        return _BASE[action] + 0.5 * self.engagement + _AFFINITY[action] * self.affinity

    def step(self, action: str) -> tuple:
        """Show ``action``: returns ``(reward, done)`` and moves the user on."""
        reward = float(self._rng.random() < self.click_probability(action))
        self.engagement = min(1.0, max(0.0, self.engagement + _EFFECT[action]))
        self.t += 1
        left = self._rng.random() < self.leave * (1.0 - self.engagement)
        return reward, bool(left or self.t >= self.horizon)
