"""A seeded synthetic environment with linear expected rewards, for tests and demos.

Action k's expected reward in context x is ``bias[k] + W[k]·x``; observed rewards
add Gaussian noise. Contexts are ``{"user": {"f0": .., ...}, "device": {"os": ..}}``
and actions carry an id plus item features, so every policy sees realistic input.
"""
from __future__ import annotations

import numpy as np

from .exploration import sample_index
from .types import Feedback


class LinearEnvironment:
    """Contexts, candidate actions and noisy rewards with known expected values.

    Parameters
    ----------
    n_actions : int, K
    n_features : int, number of numeric context features
    noise : float, standard deviation of the reward noise
    seed : int
    """

    def __init__(self, n_actions=5, n_features=6, noise=0.1, seed=0):
        rng = np.random.default_rng(seed)
        self.n_features, self.noise = n_features, noise
        self.W = rng.normal(size=(n_actions, n_features)) / np.sqrt(n_features)
        self.bias = rng.normal(0.0, 0.3, n_actions)
        self.actions = [{"id": f"a{k}", "features": {"item": {"kind": f"k{k % 3}",
                                                              "quality": round(float(b), 3)}}}
                        for k, b in enumerate(self.bias)]
        self._rng = np.random.default_rng(seed + 1)

    def context(self) -> tuple:
        """A fresh context: ``(context dict, x (n_features,))``."""
        x = self._rng.normal(size=self.n_features)
        return self.as_context(x), x

    @staticmethod
    def as_context(x) -> dict:
        """The context dict a policy sees for the feature vector ``x``."""
        return {"user": {f"f{i}": float(v) for i, v in enumerate(x)},
                "device": {"os": "ios" if x[0] > 0 else "android"}}

    def expected(self, x) -> np.ndarray:
        """Expected reward of every action, (K,)."""
        return self.bias + self.W @ x

    def reward(self, k, x) -> float:
        return float(self.expected(x)[k] + self._rng.normal(0.0, self.noise))


def run(policy, env: LinearEnvironment, rounds: int, seed: int = 0) -> dict:
    """Online loop: decide, sample, observe, learn each round. Returns mean rewards.

    ``policy_reward`` is the mean observed reward; ``uniform_reward`` and
    ``best_reward`` the expected reward of uniform random and of the best action, in
    the same contexts.
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
