"""Linear Thompson sampling with propensities from a fixed set of seeded posterior draws."""
from __future__ import annotations

import numpy as np

from .exploration import argmax_frequencies, stable_hash
from .linear import SHARED_ARM, LinearPolicy
from .params import check_int, check_number

#: Arms whose posterior draws are memoised at once.
DRAW_CACHE_LIMIT = 10_000


class LinTS(LinearPolicy):
    """Thompson sampling on the ridge posterior θ ~ N(θ̂, v² A⁻¹).

    Thompson sampling picks the argmax of one posterior draw, but the probability of
    that event has no closed form. So the policy keeps ``n_draws`` = M posterior draws
    per arm, seeded from (``seed``, arm id, number of changes to that arm: its updates,
    and with a ``window`` also the removals of its old events): fixed for a
    given model state, identical in every process and after a snapshot reload. The pmf
    is the share of the M draws under which each action has the highest sampled
    reward (ties split), mixed with an ε floor:

        pmf = (1−ε)·wins/M + ε/K

    It is an exact propensity for the policy actually run (sampling from this pmf
    is Thompson sampling over M posterior samples), resolved to 1/M steps.

    Parameters
    ----------
    v : float > 0
        Posterior scale; larger explores more.
    n_draws : int >= 1
        M, the posterior draws per arm (default 64).
    epsilon : float in (0, 1]
        Exploration floor (default 0.01) so every propensity is positive.
    seed : int
        Seed of the posterior draws.
    featurizer, model, l2, window : see :class:`bandits.linear.LinearPolicy`

    References
    ----------
    Agrawal, Goyal. Thompson sampling for contextual bandits with linear payoffs.
    ICML 2013.
    """

    name = "lints"

    def __init__(self, v=0.5, n_draws=64, epsilon=0.01, seed=0, featurizer=None,
                 model="shared", l2=1.0, window=0):
        super().__init__(featurizer, model, l2, window)
        self.v = check_number("v", v, 0.0, low_open=True)
        self.n_draws = check_int("n_draws", n_draws, 1, 100_000)
        self.epsilon = check_number("epsilon", epsilon, 0.0, 1.0, low_open=True)
        self.seed = check_int("seed", seed, 0)
        self._draws: dict = {}

    def _arm_draws(self, arm_id: str) -> np.ndarray:
        """(M, d) posterior draws of one arm for its current state, memoised."""
        bank = self.bank_
        i = bank.lookup((arm_id,))[0]
        count = int(bank.changes_[i]) if i >= 0 else 0
        hit = self._draws.get(arm_id)
        if hit is not None and hit[0] == count:
            return hit[1]
        rng = np.random.default_rng([self.seed, stable_hash(0, arm_id), count])
        z = rng.standard_normal((self.n_draws, bank.dim))
        if i < 0:
            draws = z * (self.v / np.sqrt(self.l2))
        else:
            draws = bank.theta_[i] + self.v * z @ _sqrt_psd(bank.A_inv_[i]).T
        if len(self._draws) >= DRAW_CACHE_LIMIT:
            self._draws.clear()
        self._draws[arm_id] = (count, draws)
        return draws

    def _score(self, ids, X):
        means = self._means(ids, X)
        if self._shared:
            sampled = X @ self._arm_draws(SHARED_ARM).T  # (K, M)
        else:
            sampled = np.stack([self._arm_draws(a) @ X[k] for k, a in enumerate(ids)])
        pmf = (1.0 - self.epsilon) * argmax_frequencies(sampled) + self.epsilon / len(ids)
        return means, pmf

    def _set_state(self, state, arrays):
        super()._set_state(state, arrays)
        self._draws.clear()


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = S for a covariance that rounding may have made slightly indefinite."""
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        w, V = np.linalg.eigh((S + S.T) / 2)
        return V * np.sqrt(np.maximum(w, 0.0))
