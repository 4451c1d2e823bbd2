"""Run a policy in an environment in-process: decide, sample, reward, learn.

Rewards can arrive ``delay`` rounds late, and a ``missing`` share of them never
arrives (the policy then learns ``default_reward``, as the service's reward window
does). The draw uses :func:`bandits.sample_index` with the event id, as the service.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..exploration import sample_index
from ..params import check_int, check_number
from ..types import Feedback
from .trajectory import Trajectory


def is_missing(env, t: int, missing: float) -> bool:
    """Whether round ``t``'s reward is withheld: seeded by (env seed, t)."""
    return missing > 0 and np.random.default_rng((env.seed, t, 2)).random() < missing


def run_policy(policy, env, rounds: int, *, seed: int = 0, delay: int = 0, missing: float = 0.0,
               default_reward: float = 0.0, label: str | None = None, progress=None) -> Trajectory:
    """Play ``rounds`` rounds; returns the :class:`Trajectory`.

    ``progress``, if given, is called with 1 after every round (a tqdm ``update``).
    """
    check_int("rounds", rounds, 1)
    check_int("delay", delay, 0)
    check_number("missing", missing, 0.0, 1.0)
    traj, pending = Trajectory(label or policy.name), deque()
    for t in range(rounds):
        rnd = env.round(t)
        decision = policy.decide(rnd.context, rnd.actions)
        event_id = f"sim-{t}"
        k = sample_index(decision.pmf, seed, event_id)
        gone = is_missing(env, t, missing)
        reward = rnd.reward(k)
        traj.record(rnd, k, decision.pmf[k], float("nan") if gone else reward, event_id)
        pending.append((t, Feedback(rnd.context, rnd.actions, k, float(decision.pmf[k]),
                                    default_reward if gone else reward)))
        while pending and pending[0][0] <= t - delay:
            policy.learn([pending.popleft()[1]])
        if progress is not None:
            progress(1)
    return traj
