"""Supervised-to-bandit: a labelled dataset where the actions are the classes and the
reward is 1 for the right class, 0 otherwise (the classic benchmark of Dudík et al.
2011 and Bietti et al. 2021). The best expected reward is exactly 1 in every round.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Environment

#: The datasets scikit-learn ships (no download), by name.
SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits")


class SupervisedEnv(Environment):
    """Rounds draw a random row of ``X``; contexts ``{"x": {"f0": .., ...}}`` (features
    standardised); actions ``class-<label>``; reward 1 for the row's label.

    Parameters
    ----------
    X : ndarray (n, p)
    y : array (n,) of labels
    name : str
    seed : int
    """

    def __init__(self, X, y, name: str = "supervised", seed: int = 0):
        super().__init__(seed)
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise ConfigError("X", f"needs shape (n, p) matching y of length n, got {X.shape} and {y.shape}")
        self.labels = sorted(set(y.tolist()))
        if len(self.labels) < 2:
            raise ConfigError("y", "needs at least two classes")
        sd = X.std(axis=0)
        self.X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        self.y = np.searchsorted(self.labels, y)
        self.name = name
        self.actions = [{"id": f"class-{c}", "features": {}} for c in self.labels]

    @classmethod
    def from_sklearn(cls, dataset: str, seed: int = 0) -> "SupervisedEnv":
        """One of :data:`SKLEARN_DATASETS` (needs scikit-learn: ``pip install cbserve[sim]``)."""
        if dataset not in SKLEARN_DATASETS:
            raise ConfigError("dataset", f"unknown dataset {dataset!r}", SKLEARN_DATASETS)
        from sklearn import datasets

        data = getattr(datasets, f"load_{dataset}")()
        return cls(data.data, data.target, dataset, seed)

    def _round(self, t, rng):
        i = int(rng.integers(len(self.y)))
        context = {"x": {f"f{j}": round(float(v), 4) for j, v in enumerate(self.X[i])}}
        expected = np.zeros(len(self.labels))
        expected[self.y[i]] = 1.0
        return self._make(t, context, self.actions, expected)

    def describe(self):
        return f"{self.name}: {len(self.y)} rows, {self.X.shape[1]} features, {len(self.labels)} classes"
