"""Off-policy estimators of a target policy's value from logged bandit feedback.

Symbols (n logged rounds, K actions; every array is float64 unless said otherwise):

==================  =========  ==========================================================
keyword             shape      meaning
==================  =========  ==========================================================
``rewards``         (n,)       r_i, the logged reward
``propensities``    (n,)       μ_i = μ(a_i|x_i) > 0, the logger's probability of a_i
``target_probs``    (n,)       π_i = π(a_i|x_i), the target's probability of a_i
``q_hat``           (n, K)     q̂(x_i, k), a reward model's estimate for every action
``target_pmf``      (n, K)     π(k|x_i), the target's full pmf (0 for padded actions)
``actions``         (n,) int   a_i, the logged action's index into the K columns
``logging_pmf``     (n, K)     μ(k|x_i), optional: enables the support check
==================  =========  ==========================================================

With importance weights w_i = π_i / μ_i:

- IPS   V = mean(w r)
- SNIPS V = Σ w r / Σ w (self-normalised: bounded by the rewards, slightly biased)
- DM    V = mean(Σ_k π(k|x) q̂(x, k)) (no weights; as good as the model)
- DR    V = DM + mean(w (r − q̂(x, a)))
- SNDR  V = DM + Σ w (r − q̂(x, a)) / Σ w

Every function takes the arrays as keywords (the ones it does not need are ignored, so
one dict can be passed to all five) and returns an :class:`Estimate`: the value, a
confidence interval (normal approximation by default, ``ci="bootstrap"`` on request;
``level`` configurable), the effective sample size ESS = (Σw)² / Σw² (n for DM) and n.
Normal intervals of the self-normalised estimators use the delta method. DM's interval
covers only the sampling noise of the contexts, not the reward model's bias.

A :class:`~replay.errors.ReplayWarning` is issued when propensities are tiny (the
variance is then dominated by a few rounds), when the target puts mass on actions the
logger never explored (``logging_pmf`` given), or when the ESS is under 1% of n.

**No interval on too small a sample.** When the ESS is under ``min_ess`` (default
:data:`MIN_ESS` = 30, where a normal interval of a mean stops being trustworthy), or
the interval has zero width (every term equal: no spread to size it from), ``low`` and
``high`` are NaN and a :class:`~replay.errors.ReplayWarning` says why: an estimate from
one matched round is reported as unknown, never as a certain ``[v, v]``.

References: Horvitz & Thompson 1952 (IPS); Swaminathan & Joachims 2015 (SNIPS);
Dudík, Langford & Li 2011 (DR); Li, Chu, Langford & Wang 2011 (replay).

Examples
--------
>>> import numpy as np, warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     est = ips(rewards=np.array([1.0, 0.0, 1.0, 0.0]),
...               propensities=np.array([0.5, 0.5, 0.25, 0.25]),
...               target_probs=np.array([1.0, 0.0, 0.5, 0.5]))
>>> est.value, est.ess
(1.0, 3.0)
>>> est.low, est.high  # ESS 3 < MIN_ESS = 30: no interval, and a warning says why
(nan, nan)
>>> str(caught[0].message)
'ips: effective sample size 3.0 is under 30: too few to size an interval (shown as n/a)'
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from .errors import EstimatorError, ReplayWarning

#: Propensities below this are called tiny in the warning (weights above 1000).
TINY_PROPENSITY = 1e-3
#: The ESS warning fires below this share of n.
LOW_ESS_SHARE = 0.01
#: Below this effective sample size (accepted rounds for replay) an estimate has no
#: interval: the normal approximation of a mean needs about 30 equally weighted rounds.
MIN_ESS = 30
#: Target mass on never-explored actions tolerated without a warning (share of n).
SUPPORT_TOLERANCE = 1e-6
#: A target pmf row may miss 1 by this much.
PMF_TOLERANCE = 1e-6
CI_METHODS = ("normal", "bootstrap")


@dataclass(frozen=True)
class Estimate:
    """An estimated policy value with its ``level`` confidence interval [low, high]."""

    estimator: str
    value: float
    low: float
    high: float
    level: float
    ess: float
    n: int
    ci: str

    def to_dict(self) -> dict:
        return asdict(self)


#: Every argument the estimators take. One set of arrays serves all of them (each ignores
#: the others' arrays); any other name is refused, so a typo such as ``levl=`` fails.
INPUTS = frozenset({"rewards", "propensities", "target_probs", "q_hat", "target_pmf", "actions",
                    "logging_pmf", "ci", "level", "n_boot", "seed", "min_ess"})


def _refuse_unknown(name: str, others: dict, inputs: frozenset = INPUTS,
                    kind: str = "estimators") -> None:
    """A ``TypeError`` naming the first argument none of the ``kind`` takes."""
    unknown = sorted(set(others) - inputs)
    if unknown:
        raise TypeError(f"{name}() got an unexpected keyword argument {unknown[0]!r} "
                        f"({kind} take {', '.join(sorted(inputs))})")


# -- the estimators -----------------------------------------------------------------------
def ips(*, rewards=None, propensities=None, target_probs=None, ci="normal", level=0.95,
        n_boot=1000, seed=0, min_ess=MIN_ESS, **others) -> Estimate:
    """Inverse propensity scoring: unbiased while μ > 0 wherever π > 0."""
    _refuse_unknown("ips", others)
    r, w = _weighted(rewards, propensities, target_probs)
    terms = w * r
    value = _finite(terms.mean(), "rewards")
    return _estimate("ips", value, terms, w, (terms,), _first, ci, level, n_boot, seed,
                     min_ess)


def snips(*, rewards=None, propensities=None, target_probs=None, ci="normal", level=0.95,
          n_boot=1000, seed=0, min_ess=MIN_ESS, **others) -> Estimate:
    """Self-normalised IPS: Σ w r / Σ w."""
    _refuse_unknown("snips", others)
    r, w = _weighted(rewards, propensities, target_probs)
    wr = w * r
    w_sum = _positive_sum(w)
    value = _finite(wr.sum() / w_sum, "rewards")
    influence = w * (r - value)
    influence *= r.size / w_sum
    return _estimate("snips", value, influence, w, (wr, w), _ratio, ci, level, n_boot, seed,
                     min_ess)


def dm(*, q_hat=None, target_pmf=None, logging_pmf=None, ci="normal", level=0.95, n_boot=1000,
       seed=0, min_ess=MIN_ESS, **others) -> Estimate:
    """Direct method: the reward model's value of the target pmf."""
    _refuse_unknown("dm", others)
    base = _model_term(q_hat, target_pmf, logging_pmf)
    value = _finite(base.mean(), "q_hat")
    return _estimate("dm", value, base, None, (base,), _first, ci, level, n_boot, seed,
                     min_ess)


def dr(*, rewards=None, propensities=None, target_probs=None, q_hat=None, target_pmf=None,
       actions=None, logging_pmf=None, ci="normal", level=0.95, n_boot=1000, seed=0,
       min_ess=MIN_ESS, **others) -> Estimate:
    """Doubly robust: DM plus the importance-weighted residual of the logged action."""
    _refuse_unknown("dr", others)
    base, r, w, resid = _doubly(rewards, propensities, target_probs, q_hat, target_pmf,
                                actions, logging_pmf)
    terms = base + w * resid
    value = _finite(terms.mean(), "rewards or q_hat")
    return _estimate("dr", value, terms, w, (terms,), _first, ci, level, n_boot, seed,
                     min_ess)


def sndr(*, rewards=None, propensities=None, target_probs=None, q_hat=None, target_pmf=None,
         actions=None, logging_pmf=None, ci="normal", level=0.95, n_boot=1000, seed=0,
         min_ess=MIN_ESS, **others) -> Estimate:
    """Self-normalised DR: DM plus Σ w (r − q̂) / Σ w."""
    _refuse_unknown("sndr", others)
    base, r, w, resid = _doubly(rewards, propensities, target_probs, q_hat, target_pmf,
                                actions, logging_pmf)
    we = w * resid
    w_sum = _positive_sum(w)
    correction = we.sum() / w_sum
    value = _finite(base.mean() + correction, "rewards or q_hat")
    influence = w * (resid - correction)
    influence *= r.size / w_sum
    influence += base
    return _estimate("sndr", value, influence, w, (base, we, w), _base_plus_ratio, ci, level,
                     n_boot, seed, min_ess)


#: Estimators by name, for callers that pick them from configuration.
ESTIMATORS = {"ips": ips, "snips": snips, "dm": dm, "dr": dr, "sndr": sndr}
#: Estimators that need a reward model (q_hat, target_pmf, actions).
MODEL_BASED = ("dm", "dr", "sndr")



def effective_sample_size(weights: np.ndarray) -> float:
    """(Σw)² / Σw²: how many equally weighted rounds the weighted sample is worth."""
    total = float(weights.sum())
    square = float(np.dot(weights, weights))
    return total * total / square if square > 0 else 0.0


def sized_interval(name: str, low: float, high: float, ess: float, min_ess=MIN_ESS,
                   sample: str = "") -> tuple:
    """``(low, high)``, or ``(nan, nan)`` with a :class:`ReplayWarning` when the sample
    cannot size an interval: ESS under ``min_ess``, or zero width (no spread).

    ``sample`` names the sample in the warning (default: the effective sample size).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     sized_interval("replay", 1.0, 1.0, 1.0, sample="1 accepted round")
    (nan, nan)
    >>> str(caught[0].message)
    'replay: 1 accepted round is under 30: too few to size an interval (shown as n/a)'
    """
    _check_min_ess(min_ess)
    if ess < min_ess:
        reason = (f"{sample or f'effective sample size {ess:.1f}'} is under {min_ess:g}: "
                  "too few to size an interval")
    elif not high > low:
        reason = "the interval has zero width (every term is equal: no spread to size it from)"
    else:
        return low, high
    warnings.warn(f"{name}: {reason} (shown as n/a)", ReplayWarning, stacklevel=3)
    return math.nan, math.nan


def interval_from_terms(value: float, terms: np.ndarray, level: float) -> tuple:
    """Normal-approximation interval: value ± z·sd(terms)/√n (sd 0 for n = 1)."""
    n, centred = terms.size, terms - terms.mean()  # a dot product: a third of np.std's time
    sd = math.sqrt(float(np.dot(centred, centred)) / (n - 1)) if n > 1 else 0.0
    half = NormalDist().inv_cdf(0.5 + level / 2.0) * sd / math.sqrt(n)
    return value - half, value + half


# -- validation -----------------------------------------------------------------------------
def _check_min_ess(min_ess) -> None:
    if isinstance(min_ess, bool) or not isinstance(min_ess, (int, float)) or not min_ess >= 0:
        raise EstimatorError(f"min_ess: must be a number >= 0, got {min_ess!r}")


def _vector(name, x, n=None) -> np.ndarray:
    return checked_array(name, x, 1, None if n is None else (n,))


def checked_array(name, x, ndim: int, shape=None) -> np.ndarray:
    """``x`` as a non-empty float64 array of ``ndim`` dimensions (and ``shape``, the
    rewards' shape, when given), or an :class:`EstimatorError` naming it."""
    if x is None:
        raise EstimatorError(f"{name}: required")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != ndim or x.size == 0:
        what = "1-d array" if ndim == 1 else "(n, L) array"
        raise EstimatorError(f"{name}: must be a non-empty {what}, got shape {x.shape}")
    if shape is not None and x.shape != shape:
        got = f"{x.size} rows, rewards has {shape[0]}" if ndim == 1 else \
            f"shape {x.shape}, rewards has {shape}"
        raise EstimatorError(f"{name}: has {got}")
    return x


def _weighted(rewards, propensities, target_probs):
    """Validated rewards and importance weights π/μ."""
    r = _vector("rewards", rewards)
    p = _vector("propensities", propensities, r.size)
    t = _vector("target_probs", target_probs, r.size)
    low = p.min()
    if not low > 0.0 or not p.max() <= 1.0:
        bad = int(np.flatnonzero(~((p > 0) & (p <= 1)))[0])
        raise EstimatorError(f"propensities: must be in (0, 1], row {bad} is {float(p[bad])!r} "
                             "(a logger that never explores an action cannot be evaluated for it)")
    if not t.min() >= 0.0 or not t.max() <= 1.0:
        bad = int(np.flatnonzero(~((t >= 0) & (t <= 1)))[0])
        raise EstimatorError(f"target_probs: must be in [0, 1], row {bad} is {float(t[bad])!r}")
    w = t / p
    if low < TINY_PROPENSITY:
        warnings.warn(f"{int((p < TINY_PROPENSITY).sum())} of {p.size} propensities are below {TINY_PROPENSITY}: "
                      "a few rounds dominate the variance", ReplayWarning, stacklevel=3)
    return r, w


def _model_term(q_hat, target_pmf, logging_pmf):
    """Σ_k π(k|x) q̂(x, k) per round, with the pmf and support checks."""
    if q_hat is None or target_pmf is None:
        raise EstimatorError(f"{'q_hat' if q_hat is None else 'target_pmf'}: required by the "
                             "model-based estimators (dm, dr, sndr)")
    q = np.asarray(q_hat, dtype=np.float64)
    pmf = np.asarray(target_pmf, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] == 0 or pmf.shape != q.shape:
        raise EstimatorError(f"q_hat and target_pmf: must both be (n, K) with n > 0, got "
                             f"{q.shape} and {pmf.shape}")
    sums = pmf.sum(axis=1)
    if not pmf.min() >= 0.0 or not np.abs(sums - 1.0).max() <= PMF_TOLERANCE:
        bad = int(np.flatnonzero((pmf < 0).any(axis=1) | ~(np.abs(sums - 1.0) <= PMF_TOLERANCE))[0])
        raise EstimatorError(f"target_pmf: row {bad} is not a pmf (non-negative, summing to 1): "
                             f"{pmf[bad].tolist()}")
    if logging_pmf is not None:
        _check_support(pmf, logging_pmf)
    return np.einsum("ij,ij->i", pmf, q)


def _doubly(rewards, propensities, target_probs, q_hat, target_pmf, actions, logging_pmf):
    """Model term, rewards, weights and the logged action's residual r − q̂(x, a)."""
    base = _model_term(q_hat, target_pmf, logging_pmf)
    n, k = np.shape(q_hat)
    if actions is None:
        raise EstimatorError("actions: required by dr and sndr")
    a = np.asarray(actions)
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
        raise EstimatorError(f"actions: must be an integer array of shape ({n},), got "
                             f"{a.dtype} {a.shape}")
    if not a.min() >= 0 or not a.max() < k:
        raise EstimatorError(f"actions: indices must be in 0..{k - 1}, got {a.min()}..{a.max()}")
    if target_probs is None:
        target_probs = np.asarray(target_pmf, dtype=np.float64)[np.arange(n), a]
    r, w = _weighted(rewards, propensities, target_probs)
    if r.size != n:
        raise EstimatorError(f"rewards: has {r.size} rows, q_hat has {n}")
    resid = r - np.asarray(q_hat, dtype=np.float64)[np.arange(n), a]
    return base, r, w, resid


def _check_support(pmf, logging_pmf):
    mu = np.asarray(logging_pmf, dtype=np.float64)
    if mu.shape != pmf.shape:
        raise EstimatorError(f"logging_pmf: must have the shape of target_pmf {pmf.shape}, "
                             f"got {mu.shape}")
    unexplored = float(pmf[mu <= 0.0].sum())
    if unexplored > SUPPORT_TOLERANCE * pmf.shape[0]:
        warnings.warn(f"the target puts {unexplored / pmf.shape[0]:.2%} of its mass on actions "
                      "the logger never explored: no weighted estimator sees those rewards "
                      "(IPS and DR are biased there; DM extrapolates)", ReplayWarning, stacklevel=4)


def _positive_sum(w) -> float:
    total = float(w.sum())
    if not total > 0.0:
        raise EstimatorError("target_probs: the target gives probability 0 to every logged "
                             "action, so self-normalised estimators are undefined")
    return total


def _finite(value, culprit) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise EstimatorError(f"{culprit}: must be finite numbers (the estimate is {value})")
    return value


# -- intervals --------------------------------------------------------------------------------
def _first(means):
    return means[0]


def _ratio(means):
    return means[0] / means[1]


def _base_plus_ratio(means):
    return means[0] + means[1] / means[2]


def _estimate(name, value, terms, weights, parts, combine, ci, level, n_boot, seed,
              min_ess) -> Estimate:
    """Attach the interval and the ESS; ``parts``/``combine`` rebuild the value on a resample;
    no interval under ``min_ess``."""
    if not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise EstimatorError(f"level: must be in (0, 1), got {level!r}")
    if ci not in CI_METHODS:
        raise EstimatorError(f"ci: must be one of {', '.join(CI_METHODS)}, got {ci!r}")
    if ci == "bootstrap" and (isinstance(n_boot, bool) or not isinstance(n_boot, int)
                              or n_boot < 10):
        raise EstimatorError(f"n_boot: must be an integer >= 10, got {n_boot!r}")
    _check_min_ess(min_ess)
    n = terms.size
    ess = float(n) if weights is None else effective_sample_size(weights)
    low = high = math.nan
    if ess >= min_ess and ci == "normal":
        low, high = interval_from_terms(value, terms, level)
    elif ess >= min_ess:
        low, high = _bootstrap(parts, combine, level, n_boot, seed)
    if weights is not None and ess < LOW_ESS_SHARE * n:
        warnings.warn(f"{name}: effective sample size {ess:.1f} is under {LOW_ESS_SHARE:.0%} of "
                      f"{n} rounds: the target rarely agrees with what the logger explored",
                      ReplayWarning, stacklevel=3)
    low, high = sized_interval(name, float(low), float(high), ess, min_ess)
    return Estimate(name, value, low, high, float(level), ess, n, ci)


def _bootstrap(parts, combine, level, n_boot, seed) -> tuple:
    """Percentile interval over ``n_boot`` resamples of the rounds (seeded)."""
    n = parts[0].size
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            values[b] = combine([part[idx].mean() for part in parts])
    alpha = (1.0 - level) / 2.0
    values = values[np.isfinite(values)]
    return tuple(np.quantile(values, [alpha, 1.0 - alpha]))
