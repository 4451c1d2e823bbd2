"""Online ridge regression, one model per arm, with A⁻¹ kept by Sherman–Morrison.

For arm a after n updates: A = λI + Σ w x xᵀ, b = Σ w r x, θ = A⁻¹ b. The inverse
is updated in O(d²) per observation (no matrix inverse per update); A itself is
kept too, so snapshots and tests can compare against the closed form.
A shared model is a bank with one arm.

With a ``window`` W > 0 the bank forgets: it keeps the last W observations (over all
arms, in arrival order) and removes the oldest by a Sherman–Morrison downdate when a
new one arrives, so A = λI + Σ over the window only. A policy then follows a reward
that drifts, at the price of W stored rows; A⁻¹ is recomputed from A every W updates
so the rank-one steps cannot drift apart from it.
"""
from __future__ import annotations

import numpy as np


class RidgeBank:
    """Per-arm ridge state; arms are created on first update and indexed by id.

    Attributes
    ----------
    A_ : ndarray (m, d, d)
    A_inv_ : ndarray (m, d, d)
    b_ : ndarray (m, d)
    theta_ : ndarray (m, d)
    counts_ : ndarray (m,) int, updates per arm (ever, not only in the window)
    changes_ : ndarray (m,) int, changes to each arm's state: equal to ``counts_``
        without a window; with one, removals and refreshes count too
    win_arm_, win_x_, win_r_, win_w_ : the window's arms (−1: empty), rows, rewards and
        weights, (W,), (W, d), (W,), (W,)
    win_n_ : int, observations that have entered the window
    arm_ids_ : list of str, arm index -> id
    """

    #: Observations buffered before they are folded into A in one matrix product.
    PENDING_LIMIT = 256

    def __init__(self, dim: int, l2: float = 1.0, window: int = 0):
        self.dim, self.l2, self.window = dim, l2, window
        self.win_arm_ = np.full(window, -1, dtype=np.int64)
        self.win_x_ = np.zeros((window, dim))
        self.win_r_ = np.zeros(window)
        self.win_w_ = np.zeros(window)
        self.win_n_ = 0
        self._A = np.zeros((0, dim, dim))
        self._pending: list = []
        self._outer = np.empty((dim, dim))
        self.A_inv_ = np.zeros((0, dim, dim))
        self.b_ = np.zeros((0, dim))
        self.theta_ = np.zeros((0, dim))
        self.counts_ = np.zeros(0, dtype=np.int64)
        self.changes_ = np.zeros(0, dtype=np.int64)
        self.arm_ids_: list = []
        self._index: dict = {}

    def lookup(self, ids) -> np.ndarray:
        """Arm index of each id; -1 for an arm that has never been updated."""
        get = self._index.get
        return np.fromiter((get(i, -1) for i in ids), np.intp, len(ids))

    def arm(self, arm_id: str) -> int:
        """Index of ``arm_id``, adding a fresh prior arm (A = λI, b = 0) if new."""
        i = self._index.get(arm_id)
        if i is None:
            d, i = self.dim, len(self.arm_ids_)
            eye = np.eye(d)[None]
            self._A = np.concatenate((self.A_, self.l2 * eye))
            self.A_inv_ = np.concatenate((self.A_inv_, eye / self.l2))
            self.b_ = np.concatenate((self.b_, np.zeros((1, d))))
            self.theta_ = np.concatenate((self.theta_, np.zeros((1, d))))
            self.counts_ = np.append(self.counts_, 0)
            self.changes_ = np.append(self.changes_, 0)
            self.arm_ids_.append(arm_id)
            self._index[arm_id] = i
        return i

    @property
    def A_(self) -> np.ndarray:
        """A = λI + Σ w x xᵀ per arm, (m, d, d); pending rows are folded in on read."""
        if self._pending:
            arms, weights, rows = zip(*self._pending)
            self._pending.clear()
            arms, X = np.array(arms), np.array(rows)
            WX = X * np.array(weights)[:, None]
            for i in np.unique(arms):
                sel = arms == i
                self._A[i] += WX[sel].T @ X[sel]
        return self._A

    def update(self, i: int, x: np.ndarray, reward: float, weight: float = 1.0) -> None:
        """Add one observation (x, r) with weight w to arm i: O(d²), no inverse.

        With a window, the observation that falls out of it is removed first.
        """
        if self.window:
            slot = self.win_n_ % self.window
            old = int(self.win_arm_[slot])
            if old >= 0:
                self._apply(old, self.win_x_[slot], self.win_r_[slot], -self.win_w_[slot])
            self.win_arm_[slot], self.win_x_[slot] = i, x
            self.win_r_[slot], self.win_w_[slot] = reward, weight
            self.win_n_ += 1
            if self.win_n_ % self.window == 0:
                self.refresh()
        self._apply(i, x, reward, weight)
        self.counts_[i] += 1

    def refresh(self) -> None:
        """Recompute A⁻¹ and θ from A and b exactly (one inverse per arm)."""
        self.A_inv_ = np.linalg.inv(self.A_)
        self.theta_ = np.einsum("mij,mj->mi", self.A_inv_, self.b_)
        self.changes_ += 1

    def _apply(self, i, x, reward, weight):
        """Rank-one change of arm i by weight·x xᵀ (a negative weight removes one)."""
        Ainv = self.A_inv_[i]
        Ax = Ainv @ x
        Ainv -= np.einsum("i,j->ij", Ax * (weight / (1.0 + weight * (x @ Ax))), Ax, out=self._outer)
        self._pending.append((i, weight, np.array(x)))
        if len(self._pending) >= self.PENDING_LIMIT:
            self.A_  # noqa: B018 - fold the pending rows into A
        self.b_[i] += (weight * reward) * x
        self.theta_[i] = Ainv @ self.b_[i]
        self.changes_[i] += 1

    def gather(self, arms: np.ndarray):
        """(θ (K, d), A⁻¹ (K, d, d)) for arm indices; -1 gives the prior (0, I/λ).

        Returns views when ``arms`` is ``0..m-1`` in order (the fixed-action-set case).
        """
        m = len(self.arm_ids_)
        if arms.size == m and (arms == np.arange(m)).all():
            return self.theta_, self.A_inv_
        known = arms >= 0
        theta = np.zeros((arms.size, self.dim))
        A_inv = np.broadcast_to(np.eye(self.dim) / self.l2, (arms.size, self.dim, self.dim)).copy()
        theta[known] = self.theta_[arms[known]]
        A_inv[known] = self.A_inv_[arms[known]]
        return theta, A_inv

    def arrays(self) -> dict:
        """The learned state as named arrays (for snapshots)."""
        out = {"A": self.A_, "A_inv": self.A_inv_, "b": self.b_, "theta": self.theta_,
               "counts": self.counts_}
        if self.window:
            out.update(win_arm=self.win_arm_, win_x=self.win_x_, win_r=self.win_r_,
                       win_w=self.win_w_, win_n=np.array([self.win_n_]), changes=self.changes_)
        return out

    @classmethod
    def from_arrays(cls, dim, l2, arm_ids, arrays, window: int = 0) -> "RidgeBank":
        bank = cls(dim, l2, window)
        if window:
            bank.win_arm_, bank.win_x_ = arrays["win_arm"], arrays["win_x"]
            bank.win_r_, bank.win_w_ = arrays["win_r"], arrays["win_w"]
            bank.win_n_ = int(arrays["win_n"][0])
        bank._A, bank.A_inv_, bank.b_ = arrays["A"], arrays["A_inv"], arrays["b"]
        bank.theta_, bank.counts_ = arrays["theta"], arrays["counts"]
        bank.changes_ = arrays["changes"] if window else bank.counts_.copy()
        bank.arm_ids_ = list(arm_ids)
        bank._index = {a: i for i, a in enumerate(bank.arm_ids_)}
        if bank.A_.shape != (len(arm_ids), dim, dim):
            raise ValueError(f"ridge state of shape {bank.A_.shape} does not match "
                             f"{len(arm_ids)} arms of dimension {dim}")
        return bank
