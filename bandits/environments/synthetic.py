"""Synthetic contextual rewards: linear with Gaussian noise, or logistic clicks.

Action k's score in context x is ``bias[k] + W[k]·x`` (x standard normal). The linear
environment rewards the score plus noise; the logistic one draws a click with
probability ``sigmoid(scale · score)``. Parameters are drawn once from the seed.
:class:`~bandits.environments.stream.LinearStream` reads the same model as one
sequence of draws.
"""
from __future__ import annotations

import numpy as np

from ..params import check_int, check_number
from .base import Environment


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class LinearEnv(Environment):
    """Contexts ``{"user": {"f0": .., ...}}`` and fixed actions ``a0..a{K-1}`` with item
    features; the reward of action k is ``bias[k] + W[k]·x + N(0, noise²)``."""

    name = "linear"

    def __init__(self, n_actions: int = 5, n_features: int = 6, noise: float = 0.1, seed: int = 0):
        super().__init__(seed)
        self.n_actions = check_int("n_actions", n_actions, 2)
        self.n_features = check_int("n_features", n_features, 1)
        self.noise = check_number("noise", noise, 0.0)
        rng = self._parameter_rng(seed)
        self.W = rng.normal(size=(n_actions, n_features)) / np.sqrt(n_features)
        self.bias = rng.normal(0.0, 0.3, n_actions)
        self.actions = [{"id": f"a{k}", "features": {"item": {"kind": f"k{k % 3}",
                                                              "quality": round(float(b), 3)}}}
                        for k, b in enumerate(self.bias)]

    @staticmethod
    def _parameter_rng(seed: int) -> np.random.Generator:
        """Where ``W`` and ``bias`` are drawn from: a stream apart from every round's."""
        return np.random.default_rng((seed, 2**32))

    def expected(self, x) -> np.ndarray:
        """Expected reward of every action in context ``x`` (n_features,): (K,)."""
        return self.bias + self.W @ x

    def as_context(self, x) -> dict:
        """The context a policy sees for the feature vector ``x``."""
        return {"user": {f"f{i}": float(v) for i, v in enumerate(x)}}

    def _round(self, t, rng):
        x = rng.normal(size=self.n_features)
        return self._make(t, self.as_context(x), self.actions, self.expected(x), self._noise())

    def _noise(self):
        return self.noise

    def describe(self):
        return f"{self.name}: {self.n_actions} actions, {self.n_features} features"


class LogisticEnv(LinearEnv):
    """As :class:`LinearEnv`, but the reward is a click (0/1) with probability
    ``sigmoid(scale · (bias[k] + W[k]·x))``."""

    name = "logistic"

    def __init__(self, n_actions: int = 5, n_features: int = 6, scale: float = 2.0, seed: int = 0):
        super().__init__(n_actions, n_features, 0.0, seed)
        self.scale = check_number("scale", scale, 0.0, low_open=True)

    def expected(self, x) -> np.ndarray:
        """Click probability of every action in context ``x``: (K,)."""
        return sigmoid(self.scale * super().expected(x))

    def _noise(self):
        return None
