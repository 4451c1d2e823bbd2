"""Fitted Q-iteration with a small numpy MLP: offline RL on logged transitions.

Ernst et al. (2005): repeat ``Q_{k+1} ← fit(s, a → r + γ·(1 − done)·max_a' Q_k(s', a'))``.
The regressor is a one-hidden-layer ReLU network trained by Adam on the squared error
of the taken action's output, warm-started from the previous iteration. Inputs are
standardised during training and the standardisation is folded into the first layer,
so the returned ``[(W1, b1), (W2, b2)]`` maps raw state vectors to Q-values and can
be written as ONNX by :func:`bandits.offline.onnx_mlp.mlp_onnx`. Pure numpy, seeded.
"""
from __future__ import annotations

import numpy as np


class MLP:
    """state (n, d) → Q (n, K) with one hidden ReLU layer, trained by Adam."""

    def __init__(self, d: int, k: int, hidden: int, rng: np.random.Generator):
        self.params = [rng.normal(0, np.sqrt(2.0 / d), (d, hidden)), np.zeros(hidden),
                       rng.normal(0, np.sqrt(1.0 / hidden), (hidden, k)), np.zeros(k)]
        self._m = [np.zeros_like(p) for p in self.params]
        self._v = [np.zeros_like(p) for p in self.params]
        self._t = 0

    def forward(self, X):
        W1, b1, W2, b2 = self.params
        H = np.maximum(X @ W1 + b1, 0.0)
        return H, H @ W2 + b2

    def predict(self, X) -> np.ndarray:
        return self.forward(X)[1]

    def step(self, X, A, y, lr: float) -> float:
        """One Adam step on the mean squared error of Q(X)[A] against y."""
        W1, b1, W2, b2 = self.params
        H, Q = self.forward(X)
        rows = np.arange(len(A))
        err = Q[rows, A] - y
        dQ = np.zeros_like(Q)
        dQ[rows, A] = 2.0 * err / len(A)
        dH = (dQ @ W2.T) * (H > 0)
        grads = [X.T @ dH, dH.sum(0), H.T @ dQ, dQ.sum(0)]
        self._t += 1
        for p, g, m, v in zip(self.params, grads, self._m, self._v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= lr * (m / (1 - 0.9 ** self._t)) / (np.sqrt(v / (1 - 0.999 ** self._t)) + 1e-8)
        return float(np.mean(err ** 2))


def fitted_q(X, A, R, X_next, done, n_actions: int, *, gamma: float = 1.0,
             iterations: int = 15, hidden: int = 32, epochs: int = 10, batch: int = 256,
             lr: float = 3e-3, seed: int = 0) -> list:
    """Fit Q from transitions; returns ``[(W1, b1), (W2, b2)]`` on raw inputs.

    ``X``, ``X_next``: (n, d) states; ``A``: (n,) action indices; ``R``: (n,) rewards;
    ``done``: (n,) bool (no bootstrap past the end of an episode).
    """
    X, X_next = np.asarray(X, float), np.asarray(X_next, float)
    A, R, done = np.asarray(A, int), np.asarray(R, float), np.asarray(done, bool)
    mu, sd = X.mean(0), X.std(0)
    sd[sd == 0] = 1.0
    Z, Z_next = (X - mu) / sd, (X_next - mu) / sd
    rng = np.random.default_rng(seed)
    net = MLP(X.shape[1], n_actions, hidden, rng)
    for _ in range(iterations):
        y = R + gamma * np.where(done, 0.0, net.predict(Z_next).max(axis=1))
        for _ in range(epochs):
            order = rng.permutation(len(A))
            for start in range(0, len(A), batch):
                idx = order[start:start + batch]
                net.step(Z[idx], A[idx], y[idx], lr)
    W1, b1, W2, b2 = net.params
    return [(W1 / sd[:, None], b1 - (mu / sd) @ W1), (W2, b2)]
