"""Running sums behind the estimators: a log evaluated in bounded memory.

Every estimator of :mod:`replay.estimators` with a normal interval is a function of the
mean and covariance of four per-round terms, z = (w·r, w, Σ_k π(k|x) q̂(x, k), w·(r − q̂(x, a))):

- IPS = mean(z₀), SNIPS = mean(z₀) / mean(z₁), DM = mean(z₂), DR = mean(z₂ + z₃),
  SNDR = mean(z₂) + mean(z₃) / mean(z₁);
- each interval's terms (IPS's, DR's, or SNIPS's and SNDR's delta-method influence) are
  a linear combination uᵀz, whose sample variance is uᵀCu / (n − 1) with C the
  co-moment matrix Σ (z − z̄)(z − z̄)ᵀ;
- ESS = (Σw)² / Σw², with Σw² = C₁₁ + n·z̄₁².

:class:`Moments` keeps (n, z̄, C) and merges batches with the pairwise update of Chan,
Golub & LeVeque (1979), which stays exact where the textbook Σz² − n·z̄² cancels, so
batches can be summed in any grouping (chunks of one reader, or shards on many
machines) and give the in-memory estimates to rounding.

>>> import numpy as np
>>> z = np.random.default_rng(0).random((10, 4))
>>> whole, parts = Moments(4), Moments(4)
>>> whole.add(z)
>>> for part in np.array_split(z, 3):
...     other = Moments(4)
...     other.add(part)
...     parts.merge(other)
>>> bool(np.allclose(whole.mean, parts.mean) and np.allclose(whole.comoment, parts.comoment))
True
"""
from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np

from .errors import EstimatorError, ReplayWarning
from .estimators import (LOW_ESS_SHARE, MIN_ESS, MODEL_BASED, PMF_TOLERANCE, SUPPORT_TOLERANCE,
                         TINY_PROPENSITY, Estimate, _check_min_ess, _finite, sized_interval)

#: Columns of z.
WR, W, BASE, WRESID = range(4)
#: Estimators that weigh rounds by π/μ (and warn about tiny propensities).
WEIGHTED = ("ips", "snips", "dr", "sndr")


class Moments:
    """Count, mean and co-moment matrix of m-dimensional rows, mergeable."""

    def __init__(self, m: int):
        self.n = 0
        self.mean = np.zeros(m)
        self.comoment = np.zeros((m, m))

    def add(self, z: np.ndarray) -> None:
        """Fold in the rows of ``z`` (b, m)."""
        if len(z):
            other = Moments(z.shape[1])
            other.n, other.mean = len(z), z.mean(axis=0)
            centred = z - other.mean
            other.comoment = centred.T @ centred
            self.merge(other)

    def merge(self, other: "Moments") -> None:
        """Fold in another set's moments (Chan et al.'s pairwise update)."""
        if other.n == 0:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.comoment += other.comoment + np.outer(delta, delta) * (self.n * other.n / n)
        self.mean = self.mean + delta * (other.n / n)
        self.n = n

    def variance(self, u: np.ndarray) -> float:
        """Sample variance (ddof 1) of uᵀz over the rows; 0 for n = 1."""
        return max(0.0, float(u @ self.comoment @ u)) / (self.n - 1) if self.n > 1 else 0.0


class PolicySums:
    """What the estimators need of one policy, summed over batches of logged rounds."""

    def __init__(self):
        self.z = Moments(4)
        self.tiny = 0          # rounds with μ below TINY_PROPENSITY
        self.unexplored = 0.0  # target mass on actions the logger gave probability 0
        self.support = False   # whether ``unexplored`` was measured (a logging pmf given)

    def add(self, rewards, propensities, target_pmf, q_hat, actions, logging_pmf=None,
            target_probs=None, offset: int = 0) -> None:
        """One batch: the arrays of :mod:`replay.estimators` (``target_pmf`` and ``q_hat``
        (b, K); ``target_probs`` defaults to the pmf's logged column); ``offset`` is the
        batch's first row in the log, for messages."""
        rows = np.arange(len(rewards))
        _check_pmf(target_pmf, offset)
        _check_propensities(propensities, offset)
        t = target_pmf[rows, actions] if target_probs is None else target_probs
        w = t / propensities
        base = np.einsum("ij,ij->i", target_pmf, q_hat)
        self.z.add(np.column_stack((w * rewards, w, base, w * (rewards - q_hat[rows, actions]))))
        self.tiny += int((propensities < TINY_PROPENSITY).sum())
        if logging_pmf is not None:
            self.support = True
            self.unexplored += float(target_pmf[logging_pmf <= 0.0].sum())

    def merge(self, other: "PolicySums") -> None:
        self.z.merge(other.z)
        self.tiny += other.tiny
        self.unexplored += other.unexplored
        self.support = self.support or other.support

    def estimate(self, name: str, level: float = 0.95, min_ess=MIN_ESS) -> Estimate:
        """Estimator ``name`` (ips, snips, dm, dr, sndr) with its normal interval, the
        warnings :mod:`replay.estimators` issues on the same rounds."""
        if not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
            raise EstimatorError(f"level: must be in (0, 1), got {level!r}")
        _check_min_ess(min_ess)
        z, n = self.z, self.z.n
        if n == 0:
            raise EstimatorError("rewards: must be a non-empty 1-d array, got shape (0,)")
        mean, u = z.mean, np.zeros(4)
        if name in MODEL_BASED and self.support and self.unexplored > SUPPORT_TOLERANCE * n:
            _warn_support(self.unexplored / n)
        if name in WEIGHTED and self.tiny:
            warnings.warn(f"{self.tiny} of {n} propensities are below {TINY_PROPENSITY}: "
                          "a few rounds dominate the variance", ReplayWarning, stacklevel=2)
        if name in ("snips", "sndr") and not mean[W] > 0.0:
            raise EstimatorError("target_probs: the target gives probability 0 to every logged "
                                 "action, so self-normalised estimators are undefined")
        if name == "ips":
            value, u[WR] = mean[WR], 1.0
        elif name == "snips":
            value = mean[WR] / mean[W]
            u[WR], u[W] = 1.0 / mean[W], -value / mean[W]
        elif name == "dm":
            value, u[BASE] = mean[BASE], 1.0
        elif name == "dr":
            value, u[BASE], u[WRESID] = mean[BASE] + mean[WRESID], 1.0, 1.0
        elif name == "sndr":
            correction = mean[WRESID] / mean[W]
            value = mean[BASE] + correction
            u[BASE], u[WRESID], u[W] = 1.0, 1.0 / mean[W], -correction / mean[W]
        else:
            raise EstimatorError(f"estimator: unknown {name!r}")
        value = _finite(value, "q_hat" if name == "dm" else
                        "rewards or q_hat" if name in ("dr", "sndr") else "rewards")
        ess = float(n) if name == "dm" else _ess(z)
        low = high = math.nan
        if ess >= min_ess:
            half = NormalDist().inv_cdf(0.5 + level / 2.0) * math.sqrt(z.variance(u)) / math.sqrt(n)
            low, high = value - half, value + half
        if name != "dm" and ess < LOW_ESS_SHARE * n:
            warnings.warn(f"{name}: effective sample size {ess:.1f} is under {LOW_ESS_SHARE:.0%} "
                          f"of {n} rounds: the target rarely agrees with what the logger explored",
                          ReplayWarning, stacklevel=2)
        low, high = sized_interval(name, float(low), float(high), ess, min_ess)
        return Estimate(name, float(value), low, high, float(level), ess, n, "normal")


def _ess(z: Moments) -> float:
    total = z.n * z.mean[W]
    square = z.comoment[W, W] + z.n * z.mean[W] ** 2
    return float(total * total / square) if square > 0 else 0.0


def _warn_support(share: float) -> None:
    warnings.warn(f"the target puts {share:.2%} of its mass on actions "
                  "the logger never explored: no weighted estimator sees those rewards "
                  "(IPS and DR are biased there; DM extrapolates)", ReplayWarning, stacklevel=3)


def _check_pmf(pmf: np.ndarray, offset: int) -> None:
    sums = pmf.sum(axis=1)
    bad = (pmf < 0).any(axis=1) | ~(np.abs(sums - 1.0) <= PMF_TOLERANCE)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise EstimatorError(f"target_pmf: row {offset + row} is not a pmf (non-negative, "
                             f"summing to 1): {pmf[row].tolist()}")


def _check_propensities(p: np.ndarray, offset: int) -> None:
    bad = ~((p > 0) & (p <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise EstimatorError(f"propensities: must be in (0, 1], row {offset + row} is "
                             f"{float(p[row])!r} (a logger that never explores an action "
                             "cannot be evaluated for it)")
