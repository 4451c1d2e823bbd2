"""The reward model behind DM and DR: ridge regression, cross-fitted over folds.

Round i belongs to fold ``i mod F`` (log order, so every fold spans the whole period).
The model that scores fold f is fitted on the other F − 1 folds only: a round's own
reward never helps predict it, which keeps DR's correction term honest (Chernozhukov
et al. 2018's cross-fitting). Ridge statistics add up, so fitting is one streaming pass:
A_f = Σ φφᵀ and b_f = Σ rφ per fold, then θ_f = (λI + Σ_{g≠f} A_g)⁻¹ Σ_{g≠f} b_g.

φ(x, a) is a shared hashed row with context × action interactions and the action id
(:class:`bandits.Featurizer`), so the model can learn per-action and per-context effects.
"""
from __future__ import annotations

import numpy as np

from bandits import make_featurizer
from bandits.inputs import normalize_actions

from .errors import ReplayError
from .logs import LoggedRounds
from .token_score import RidgeSums, TokenMap, ridge_predict

#: Reward-model featurizer unless the caller gives one.
DEFAULT_FEATURIZER = {"context_dim": 64, "action_dim": 32, "interaction_dim": 64}


class CrossFitRidge:
    """q̂(x, a) for every logged round and action, cross-fitted over ``folds`` folds.

    Parameters
    ----------
    featurizer : dict or bandits.Featurizer, optional
    folds : int, F ≥ 2
    l2 : float, ridge penalty λ > 0
    """

    def __init__(self, featurizer=None, folds: int = 5, l2: float = 1.0):
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ReplayError(f"folds: must be an integer >= 2, got {folds!r}")
        if not isinstance(l2, (int, float)) or not l2 > 0:
            raise ReplayError(f"l2: must be a number > 0, got {l2!r}")
        self.featurizer = make_featurizer(featurizer or DEFAULT_FEATURIZER)
        self.folds, self.l2 = folds, float(l2)
        d = self.featurizer.dim
        self.A_ = np.zeros((folds, d, d))
        self.b_ = np.zeros((folds, d))
        self.counts_ = np.zeros(folds, dtype=np.int64)
        self.theta_ = None
        self.tokens = TokenMap(self.featurizer)
        self._sums = RidgeSums(self.tokens, folds)

    def rows(self, context, actions) -> np.ndarray:
        """φ of every action of one round, (K_i, d)."""
        return self.featurizer.rows(context, normalize_actions(actions))

    def add(self, rounds: LoggedRounds, positions, features=None) -> None:
        """Accumulate the chosen rows of ``rounds``; ``positions[j]`` is row j's place in
        the log (its fold is ``positions[j] mod F``).

        ``features``, if given, holds each round's (K_i, d) rows already computed.
        """
        n = len(rounds)
        if features is None:
            features = [self.rows(c, a) for c, a in zip(rounds.contexts, rounds.actions)]
        X = np.stack([features[j][rounds.chosen[j]] for j in range(n)])
        fold = np.asarray(positions) % self.folds
        for f in range(self.folds):
            sel = fold == f
            if sel.any():
                Xf = X[sel]
                self.A_[f] += Xf.T @ Xf
                self.b_[f] += rounds.rewards[sel] @ Xf
                self.counts_[f] += int(sel.sum())
        self.theta_ = None

    def settle(self) -> None:
        """Fold the token-space sums (:meth:`add_columns`) into ``A_``, ``b_``, ``counts_``."""
        self._sums.drain(self)

    def fit(self) -> np.ndarray:
        """θ_f for every fold from the other folds' statistics, (F, d)."""
        self.settle()
        A_all, b_all = self.A_.sum(axis=0), self.b_.sum(axis=0)
        eye = self.l2 * np.eye(self.featurizer.dim)
        self.theta_ = np.stack([np.linalg.solve(eye + A_all - self.A_[f], b_all - self.b_[f])
                                for f in range(self.folds)])
        return self.theta_

    def add_columns(self, rounds: LoggedRounds, positions) -> None:
        """:meth:`add` from the rounds' token columns (:mod:`replay.token_score`)."""
        cols, folds = rounds.columns, np.asarray(positions) % self.folds
        for s, rows in cols.groups():
            self._sums.add(cols, rows, cols.action_sets[s], rounds.chosen[rows],
                           rounds.rewards[rows], folds[rows], self)
        self.theta_ = None

    def predict_columns(self, rounds: LoggedRounds, positions, width: int) -> np.ndarray:
        """:meth:`predict` from the rounds' token columns."""
        if self.theta_ is None:
            self.fit()
        cols, folds = rounds.columns, np.asarray(positions) % self.folds
        q = np.zeros((len(rounds), width))
        for s, rows in cols.groups():
            pairs = cols.action_sets[s]
            q[rows, :len(pairs)] = ridge_predict(self.tokens, cols, rows, pairs, self.theta_,
                                                 folds[rows])
        return q

    def predict(self, rounds: LoggedRounds, positions, width: int, features=None) -> np.ndarray:
        """q̂ (n, width) for ``rounds``, each round scored by the model fitted without its
        fold (``positions`` as in :meth:`add`); 0 in padded columns."""
        if self.theta_ is None:
            self.fit()
        n = len(rounds)
        if features is None:
            features = [self.rows(c, a) for c, a in zip(rounds.contexts, rounds.actions)]
        q = np.zeros((n, width))
        folds = np.asarray(positions) % self.folds
        for j in range(n):
            theta = self.theta_[folds[j]]
            q[j, :len(features[j])] = features[j] @ theta
        return q

