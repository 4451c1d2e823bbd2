"""The linear environment read as one seeded sequence: ``context()``, then ``reward(k, x)``.

:class:`LinearStream` is :class:`~bandits.environments.synthetic.LinearEnv`'s model
(action k's expected reward ``bias[k] + W[k]·x``, Gaussian noise) with its numbers
drawn in order: the parameters from ``default_rng(seed)``, then contexts and reward
noise from one generator seeded ``seed + 1``, as they are asked for. A context thus
depends on the draws before it, which suits code that asks in order (the policy
contract tests, simulated logs, :func:`run_stream`); comparing policies on common
random numbers is what ``round(t)`` is for. Contexts carry ``device.os`` besides the
``user`` features, so a policy sees a categorical feature too.

>>> env = LinearStream(n_actions=3, n_features=2, seed=3)
>>> ctx, x = env.context()
>>> sorted(ctx), [a["id"] for a in env.actions]
(['device', 'user'], ['a0', 'a1', 'a2'])
>>> env.expected(x).shape
(3,)
"""
from __future__ import annotations

import numpy as np

from ..exploration import sample_index
from ..types import Feedback
from .synthetic import LinearEnv


class LinearStream(LinearEnv):
    """Contexts, candidate actions and noisy rewards with known expected values.

    Parameters
    ----------
    n_actions : int, K
    n_features : int, number of numeric context features
    noise : float, standard deviation of the reward noise
    seed : int
    """

    name = "linear stream"

    def __init__(self, n_actions: int = 5, n_features: int = 6, noise: float = 0.1, seed: int = 0):
        super().__init__(n_actions, n_features, noise, seed)
        self._rng = np.random.default_rng(seed + 1)

    @staticmethod
    def _parameter_rng(seed: int) -> np.random.Generator:
        return np.random.default_rng(seed)

    def context(self) -> tuple:
        """The next context: ``(context dict, x (n_features,))``."""
        x = self._rng.normal(size=self.n_features)
        return self.as_context(x), x

    def as_context(self, x) -> dict:
        """The context dict a policy sees for the feature vector ``x``."""
        return {**super().as_context(x), "device": {"os": "ios" if x[0] > 0 else "android"}}

    def reward(self, k: int, x) -> float:
        """An observed reward of action ``k`` in context ``x``: the next noise draw."""
        return float(self.expected(x)[k] + self._rng.normal(0.0, self.noise))


def run_stream(policy, env: LinearStream, rounds: int, seed: int = 0) -> dict:
    """Online loop: decide, sample, observe, learn each round. Returns mean rewards.

    ``policy_reward`` is the mean observed reward; ``uniform_reward`` and
    ``best_reward`` the expected reward of uniform random and of the best action, in
    the same contexts. The draw uses :func:`bandits.sample_index` with event ids
    ``event-<t>``.
    """
    got = uniform = best = 0.0
    for t in range(rounds):
        ctx, x = env.context()
        decision = policy.decide(ctx, env.actions)
        k = sample_index(decision.pmf, seed, f"event-{t}")
        r = env.reward(k, x)
        policy.learn([Feedback(ctx, env.actions, k, float(decision.pmf[k]), r)])
        mu = env.expected(x)
        got, uniform, best = got + r, uniform + mu.mean(), best + mu.max()
    return {"policy_reward": got / rounds, "uniform_reward": uniform / rounds,
            "best_reward": best / rounds}
