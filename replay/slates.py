"""Off-policy estimators of a multi-slot (slate) policy's value from logged slates.

A slate fills L slots in order; slot j is decided over the actions not shown by the
earlier slots, so its logged probability is *conditional* on them. The slate's reward is
the sum of its slot rewards (additivity), and every estimator here estimates the target's
expected slate reward E_π[Σ_j r_j].

Symbols (n logged slates, L slots, m actions; float64 unless said otherwise):

=========================  ===========  ===============================================
keyword                    shape        meaning
=========================  ===========  ===============================================
``rewards``                (n, L)       r_ij, slot j's logged reward
``propensities``           (n, L)       μ_ij = μ(a_ij | x_i, a_i1..a_i,j−1) > 0
``target_probs``           (n, L)       π_ij = π(a_ij | x_i, a_i1..a_i,j−1), same prefix
``target_marginals``       (n, L)       P_π(slot j shows a_ij | x_i), marginal
``logging_marginals``      (n, L)       P_μ(slot j shows a_ij | x_i) > 0, marginal
``slates``                 (n, L) int   a_ij, the action index shown in slot j
``target_slot_marginals``  (n, L, m)    q_π: P_π(slot j shows a | x_i) for every a
``logging_second_moment``  (n, D, D)    Γ_μ = E_μ[1_s 1_sᵀ | x_i], D = L·m; index j·m + a
=========================  ===========  ===============================================

The last two may drop the leading n (one context for every round). A slot a round does
not have is padded with r = 0 and probabilities 1: it changes no estimate.

- ``slate_ips``  V = mean(W_i R_i), W_i = Π_j π_ij/μ_ij, R_i = Σ_j r_ij. Unbiased for
  any slate reward (no additivity needed); its variance grows with the product.
- ``rips``       V = mean(Σ_j r_ij Π_{k≤j} π_ik/μ_ik) (reward-interaction IPS). Unbiased
  when slot j's reward depends only on the slots up to j (a cascade: a user reads top
  down); lower variance than ``slate_ips``.
- ``iips``       V = mean(Σ_j r_ij π^m_ij/μ^m_ij) with marginal probabilities
  (independent IPS). Unbiased when slot j's reward depends only on the action in slot j
  (and the context); biased when slots interact.
- ``pseudo_inverse``  V = mean(R_i q_πᵀ Γ_μ⁺ 1_{s_i}). Unbiased when the slate reward is
  linear in the slot-action indicators (additive, each term depending on one slot's
  action only) and the target's marginals lie in the span of the logger's slates.

Each returns an :class:`~replay.estimators.Estimate` with a normal interval on the
per-round terms (``ci="bootstrap"`` on request) and an effective sample size: Kish's
ESS of the slate weights for ``slate_ips`` and ``pseudo_inverse``, the smallest over
slots of the ESS of slot j's weight for ``rips`` and ``iips``. The rules of
:mod:`replay.estimators` apply: no interval under ``min_ess``.

:func:`per_slot` runs the single-slot estimators of :mod:`replay.estimators` on each
slot with its conditional propensities (as Vowpal Wabbit's CCB evaluation does): slot
j's IPS estimates slot j's reward when the earlier slots show what was logged and slot j
is decided by the target. It matches the target's own slot-j value only when the earlier
slots would have shown the same; ``rips`` is the honest slate total.

References: Swaminathan, Krishnamurthy, Agarwal, Dudík, Langford, Jose & Zitouni 2017
(pseudo-inverse); Li, Abbasi-Yadkori, Kveton, Muthukrishnan, Vinay & Wen 2018 (IIPS);
McInerney, Brost, Chandar, Mehrotra & Carterette 2020 (RIPS).

Examples
--------
Three actions, two slots. The logger is uniform (1/3, then 1/2); the target gives the
logged first action 0.6 and, after it, the logged second action 0.75:

>>> import numpy as np
>>> log = dict(rewards=np.array([[1.0, 1.0], [1.0, 0.0]]),
...            propensities=np.array([[1 / 3, 0.5], [1 / 3, 0.5]]),
...            target_probs=np.array([[0.6, 0.75], [0.6, 0.75]]), min_ess=0)
>>> round(slate_ips(**log).value, 12), round(rips(**log).value, 12)
(4.05, 3.15)
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .errors import EstimatorError
from .estimators import (ESTIMATORS, MIN_ESS, Estimate, _estimate, _finite, _first,
                         checked_array, effective_sample_size)
from .estimators import _refuse_unknown as _refuse_inputs
from .slate_sim import make_world, simulate_slates

#: Every argument the slate estimators take (each ignores the others' arrays).
SLATE_INPUTS = frozenset({"rewards", "propensities", "target_probs", "target_marginals",
                          "logging_marginals", "slates", "target_slot_marginals",
                          "logging_second_moment", "ci", "level", "n_boot", "seed", "min_ess"})
#: Single-slot estimators :func:`per_slot` runs unless told otherwise.
PER_SLOT_ESTIMATORS = ("ips", "snips", "dr")


def _refuse_unknown(name: str, others: dict) -> None:
    _refuse_inputs(name, others, SLATE_INPUTS, "slate estimators")


# -- the estimators -----------------------------------------------------------------------
def slate_ips(*, rewards=None, propensities=None, target_probs=None, ci="normal", level=0.95,
              n_boot=1000, seed=0, min_ess=MIN_ESS, **others) -> Estimate:
    """Standard slate IPS: the product of the slots' conditional weights times Σ_j r_j."""
    _refuse_unknown("slate_ips", others)
    r, w = _weights(rewards, propensities, target_probs)
    weight = w.prod(axis=1)
    terms = weight * r.sum(axis=1)
    value = _finite(terms.mean(), "rewards")
    return _estimate("slate_ips", value, terms, weight, (terms,), _first, ci, level, n_boot,
                     seed, min_ess)


def rips(*, rewards=None, propensities=None, target_probs=None, ci="normal", level=0.95,
         n_boot=1000, seed=0, min_ess=MIN_ESS, **others) -> Estimate:
    """Reward-interaction (cascade) IPS: Σ_j r_j Π_{k≤j} π_k/μ_k."""
    _refuse_unknown("rips", others)
    r, w = _weights(rewards, propensities, target_probs)
    cumulative = np.cumprod(w, axis=1)
    terms = (r * cumulative).sum(axis=1)
    value = _finite(terms.mean(), "rewards")
    return _slotwise("rips", value, terms, cumulative, ci, level, n_boot, seed, min_ess)


def iips(*, rewards=None, target_marginals=None, logging_marginals=None, ci="normal",
         level=0.95, n_boot=1000, seed=0, min_ess=MIN_ESS, **others) -> Estimate:
    """Independent IPS: Σ_j r_j π^m_j/μ^m_j with marginal slot-action probabilities."""
    _refuse_unknown("iips", others)
    r, w = _weights(rewards, logging_marginals, target_marginals,
                    names=("logging_marginals", "target_marginals"))
    terms = (r * w).sum(axis=1)
    value = _finite(terms.mean(), "rewards")
    return _slotwise("iips", value, terms, w, ci, level, n_boot, seed, min_ess)


def pseudo_inverse(*, rewards=None, slates=None, target_slot_marginals=None,
                   logging_second_moment=None, ci="normal", level=0.95, n_boot=1000, seed=0,
                   min_ess=MIN_ESS, **others) -> Estimate:
    """The pseudo-inverse estimator: mean of R_i q_πᵀ Γ_μ⁺ 1_{s_i} (:func:`pi_weights`)."""
    _refuse_unknown("pseudo_inverse", others)
    r = _matrix("rewards", rewards)
    weight = pi_weights(slates, target_slot_marginals, logging_second_moment)
    if weight.size != r.shape[0]:
        raise EstimatorError(f"slates: has {weight.size} rows, rewards has {r.shape[0]}")
    terms = weight * r.sum(axis=1)
    value = _finite(terms.mean(), "rewards")
    return _estimate("pseudo_inverse", value, terms, weight, (terms,), _first, ci, level,
                     n_boot, seed, min_ess)


#: Slate estimators by name.
SLATE_ESTIMATORS = {"slate_ips": slate_ips, "rips": rips, "iips": iips,
                    "pseudo_inverse": pseudo_inverse}
#: Slate estimators that need marginal probabilities (:mod:`replay.slate_marginals`).
NEEDS_MARGINALS = ("iips", "pseudo_inverse")


def pi_weights(slates, target_slot_marginals, logging_second_moment) -> np.ndarray:
    """The pseudo-inverse weight of each logged slate, q_πᵀ Γ_μ⁺ 1_s, shape (n,).

    Γ_μ⁺ (``numpy.linalg.pinv``) is computed once per distinct (q_π, Γ_μ) pair, so a log
    with few distinct contexts costs few pseudo-inverses.

    >>> import numpy as np
    >>> # one slot over two actions: Γ is diag(μ), so the weight is π(a)/μ(a)
    >>> pi_weights(np.array([[0], [1]]), np.array([[0.9, 0.1]]), np.diag([0.5, 0.5]))
    array([1.8, 0.2])
    """
    s = np.asarray(slates)
    if s.ndim != 2 or s.size == 0 or not np.issubdtype(s.dtype, np.integer):
        raise EstimatorError(f"slates: must be a non-empty (n, L) integer array, got "
                             f"{s.dtype} {s.shape}")
    n, n_slots = s.shape
    q = np.asarray(target_slot_marginals, dtype=np.float64)
    g = np.asarray(logging_second_moment, dtype=np.float64)
    q = np.broadcast_to(q, (n, *q.shape)) if q.ndim == 2 else q
    g = np.broadcast_to(g, (n, *g.shape)) if g.ndim == 2 else g
    if q.ndim != 3 or q.shape[:2] != (n, n_slots):
        raise EstimatorError(f"target_slot_marginals: must be (L, m) or (n, L, m) with "
                             f"(n, L) = {(n, n_slots)}, got {q.shape}")
    m = q.shape[2]
    d = n_slots * m
    if g.shape != (n, d, d):
        raise EstimatorError(f"logging_second_moment: must be (D, D) or (n, D, D) with "
                             f"D = L·m = {d}, got {g.shape}")
    if not s.min() >= 0 or not s.max() < m:
        raise EstimatorError(f"slates: action indices must be in 0..{m - 1}, got "
                             f"{s.min()}..{s.max()}")
    both = np.concatenate([q.reshape(n, d), g.reshape(n, d * d)], axis=1)
    distinct, inverse = np.unique(both, axis=0, return_inverse=True)
    gammas = distinct[:, d:].reshape(-1, d, d)
    v = np.einsum("uij,uj->ui", np.linalg.pinv(gammas, hermitian=True), distinct[:, :d])
    index = np.arange(n_slots) * m + s  # (n, L) positions of the slate's indicators
    return v[inverse.reshape(-1)[:, None], index].sum(axis=1)


def per_slot(slots: list, estimators=PER_SLOT_ESTIMATORS, **options) -> list:
    """``{estimator: Estimate}`` for each slot, by the single-slot estimators.

    ``slots[j]`` holds slot j's keyword arrays as :mod:`replay.estimators` takes them
    (``rewards``, ``propensities`` and ``target_probs`` of the rounds that have the slot,
    with its conditional propensities; ``q_hat``, ``target_pmf``, ``actions`` for DR);
    ``options`` (``ci``, ``level``, ``min_ess``...) go to every call.

    >>> import numpy as np
    >>> slot = dict(rewards=np.array([1.0, 0.0]), propensities=np.array([0.5, 0.5]),
    ...             target_probs=np.array([1.0, 0.0]))
    >>> [e["ips"].value for e in per_slot([slot, slot], ("ips",), min_ess=0)]
    [1.0, 1.0]
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise EstimatorError(f"estimators: unknown {', '.join(unknown)} "
                             f"(allowed: {', '.join(ESTIMATORS)})")
    return [{name: ESTIMATORS[name](**arrays, **options) for name in estimators}
            for arrays in slots]


# -- validation and intervals -------------------------------------------------------------
def _matrix(name, x, shape=None) -> np.ndarray:
    return checked_array(name, x, 2, shape)


def _weights(rewards, propensities, target_probs,
             names=("propensities", "target_probs")) -> tuple:
    """Validated rewards and the per-slot weights π/μ, both (n, L)."""
    r = _matrix("rewards", rewards)
    p = _matrix(names[0], propensities, r.shape)
    t = _matrix(names[1], target_probs, r.shape)
    if not p.min() > 0.0 or not p.max() <= 1.0:
        i, j = (int(k[0]) for k in np.nonzero(~((p > 0) & (p <= 1))))
        raise EstimatorError(f"{names[0]}: must be in (0, 1], row {i} slot {j} is "
                             f"{float(p[i, j])!r} (a logger that never shows an action "
                             "there cannot be evaluated for it)")
    if not t.min() >= 0.0 or not t.max() <= 1.0:
        i, j = (int(k[0]) for k in np.nonzero(~((t >= 0) & (t <= 1))))
        raise EstimatorError(f"{names[1]}: must be in [0, 1], row {i} slot {j} is "
                             f"{float(t[i, j])!r}")
    return r, t / p


def _slotwise(name, value, terms, weights, ci, level, n_boot, seed, min_ess) -> Estimate:
    """An estimate whose weights differ by slot: its ESS is the smallest slot's."""
    worst = int(np.argmin([effective_sample_size(w) for w in weights.T]))
    return _estimate(name, value, terms, weights[:, worst], (terms,), _first, ci, level,
                     n_boot, seed, min_ess)


def slate_ci_coverage(n_logs: int = 200, rounds: int = 3000, seed: int = 0,
                      level: float = 0.95) -> dict:
    """How often each slate estimator's ``level`` interval holds the true value over
    ``n_logs`` independent simulated logs of ``rounds`` slates (:mod:`replay.slate_sim`:
    position-biased clicks, 5 actions, 2 slots, world drawn from ``seed``).

    Returns ``{"true_value", "n_logs", "rounds", "level", "coverage": {estimator: share},
    "mean_value": {...}, "mean_width": {...}}``; a log whose interval is n/a counts as
    not covering.

    >>> out = slate_ci_coverage(n_logs=10, rounds=2000, seed=1)
    >>> sorted(out["coverage"]), 0.0 < out["true_value"] < 2.0
    (['iips', 'pseudo_inverse', 'rips', 'slate_ips'], True)
    """
    world = make_world(seed=seed)
    rng = np.random.default_rng(seed + 1)
    found = {name: [] for name in SLATE_ESTIMATORS}
    for _ in range(n_logs):
        arrays = simulate_slates(world, rounds, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, fn in SLATE_ESTIMATORS.items():
                found[name].append(fn(**arrays, level=level))
    truth = world.true_value
    return {"true_value": truth, "n_logs": n_logs, "rounds": rounds, "level": level,
            "coverage": {k: sum(bool(e.low <= truth <= e.high) for e in v) / n_logs
                         for k, v in found.items()},
            "mean_value": {k: float(np.mean([e.value for e in v])) for k, v in found.items()},
            "mean_width": {k: float(np.nanmean([e.high - e.low for e in v]))
                           if any(math.isfinite(e.low) for e in v) else math.nan
                           for k, v in found.items()}}
