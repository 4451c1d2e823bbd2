"""Replay by rejection sampling (Li, Chu, Langford & Wang 2011), for policies that learn
as they go.

The logger chose a_i with probability μ_i. For each logged round the target draws its
own action a'_i from π(·|x_i); the round is *accepted* when a'_i = a_i and, with a
uniform u_i, u_i < c / μ_i, where c = min_i μ_i. An accepted round then has context
distributed as in the log and action distributed as π (P(accept | x) = c for every x),
so the mean accepted reward estimates π's value; the policy learns from accepted
rounds only, exactly as it would have online. The price is efficiency: about c·n rounds
are accepted, so a logger with a tiny minimum propensity leaves few: with fewer than
:data:`~replay.estimators.MIN_ESS` (30) accepted rounds the estimate has no interval
(NaN, with a :class:`~replay.errors.ReplayWarning`).
"""
from __future__ import annotations

import numpy as np

from bandits import BanditError, Feedback, sample_index

from .estimators import MIN_ESS, Estimate, interval_from_terms, sized_interval


class RejectionReplay:
    """Streams logged rounds through one learning policy; :meth:`estimate` at the end."""

    def __init__(self, policy, min_propensity: float, seed: int = 0):
        self.policy, self.c, self.seed = policy, float(min_propensity), seed
        self._rng = np.random.default_rng(seed)
        self.seen = self.errors = 0
        self.accepted: list = []

    def feed(self, rounds) -> None:
        """Decide, maybe accept, and learn from the accepted rounds of one chunk."""
        u = self._rng.random(len(rounds))
        keep = u < self.c / rounds.propensities
        for j in np.flatnonzero(keep):
            ctx, actions = rounds.contexts[j], rounds.actions[j]
            try:
                pmf = self.policy.decide(ctx, actions).pmf
            except BanditError:
                self.errors += 1
                continue
            mine = sample_index(pmf, self.seed, rounds.event_ids[j])
            if mine == rounds.chosen[j]:
                reward = float(rounds.rewards[j])
                self.accepted.append(reward)
                self.policy.learn([Feedback(ctx, actions, mine, float(pmf[mine]), reward)])
        self.seen += len(rounds)

    def estimate(self, level: float = 0.95, min_ess=MIN_ESS) -> Estimate:
        """Mean accepted reward with a normal interval; ESS = accepted rounds; no interval
        (NaN, with a warning) under ``min_ess`` accepted rounds."""
        r = np.asarray(self.accepted, dtype=np.float64)
        value = float(r.mean()) if r.size else float("nan")
        low, high = interval_from_terms(value, r, level) if r.size else (value, value)
        sample = f"{r.size} accepted round{'' if r.size == 1 else 's'}"
        low, high = sized_interval("replay", low, high, float(r.size), min_ess, sample)
        return Estimate("replay", value, low, high, level, float(r.size), self.seen, "normal")
