"""Marginal and pairwise slot-action probabilities of a sequential slate policy.

A slate policy fills slot 0, then slot 1, ... each from a *conditional* pmf over the m
actions given the actions already shown (0 for those, and for actions a slot may not
show). IIPS needs its marginals P(slot j shows a); the pseudo-inverse estimator also
needs the second moment Γ = E[1_s 1_sᵀ] over the L·m slot-action indicators (entry
(j·m + a, k·m + b) = P(slot j shows a and slot k shows b)). Neither is logged: both
come from the policy's conditional pmfs, ``pmf_fn(j, earlier) -> (m,) array`` with
``earlier`` the tuple of the actions of slots 0..j−1.

- **Exact** when the policy has at most ``limit`` slates of positive probability
  (default :data:`ENUMERATION_LIMIT` = 20,000): every slate is enumerated, each prefix's
  pmf asked once.
- **Monte Carlo** above it: ``samples`` slates (default :data:`MC_SAMPLES` = 20,000) are
  drawn with a fixed seed by splitting the count down the tree (a multinomial draw per
  visited prefix, each prefix's pmf asked once). Each probability p is then estimated
  with standard error √(p(1−p)/samples) ≤ 0.5/√samples ≈ 0.0035; ``exact`` says which.

Pure: no I/O.

>>> import numpy as np
>>> def uniform(j, earlier):  # 3 actions, uniform over those not shown yet
...     pmf = np.ones(3)
...     pmf[list(earlier)] = 0.0
...     return pmf / pmf.sum()
>>> out = slate_marginals(uniform, n_slots=2, n_actions=3)
>>> out.exact, out.slates, out.marginals.round(4).tolist()
(True, 6, [[0.3333, 0.3333, 0.3333], [0.3333, 0.3333, 0.3333]])
>>> round(float(out.second_moment[0, 3 + 1]), 4)  # slot 0 shows 0 and slot 1 shows 1
0.1667
>>> approx = slate_marginals(uniform, n_slots=2, n_actions=3, limit=5, samples=20000)
>>> approx.exact, bool(np.abs(approx.marginals - 1 / 3).max() < 0.02)
(False, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import EstimatorError

#: Slates enumerated exactly; above this, Monte Carlo.
ENUMERATION_LIMIT = 20_000
#: Monte Carlo sample size (standard error ≤ 0.5/√samples per probability).
MC_SAMPLES = 20_000
#: A conditional pmf may miss 1 by this much.
PMF_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SlateMarginals:
    """``marginals`` (L, m), ``second_moment`` (L·m, L·m), whether they are ``exact``,
    and the number of ``slates`` enumerated (or Monte Carlo samples drawn)."""

    marginals: np.ndarray
    second_moment: np.ndarray
    exact: bool
    slates: int


def enumerate_slates(pmf_fn: Callable, n_slots: int, limit: int = ENUMERATION_LIMIT):
    """``(slates (S, L) int, probabilities (S,))`` of every slate of positive probability,
    or None when there are more than ``limit``.

    >>> import numpy as np
    >>> first = lambda j, earlier: np.array([0.5, 0.5]) if j == 0 else np.eye(2)[1 - earlier[0]]
    >>> s, p = enumerate_slates(first, 2)
    >>> s.tolist(), p.tolist()
    ([[0, 1], [1, 0]], [0.5, 0.5])
    """
    slates, probs = [], []
    stack = [((), 1.0)]
    while stack:
        prefix, mass = stack.pop()
        if len(prefix) == n_slots:
            slates.append(prefix)
            probs.append(mass)
            if len(slates) > limit:
                return None
            continue
        pmf = _pmf(pmf_fn, len(prefix), prefix)
        stack.extend((prefix + (a,), mass * float(pmf[a])) for a in np.flatnonzero(pmf)[::-1])
    return np.array(slates, dtype=np.int64).reshape(-1, n_slots), np.array(probs)


def sample_slates(pmf_fn: Callable, n_slots: int, samples: int = MC_SAMPLES, seed: int = 0):
    """``(slates (S, L) int, shares (S,))``: ``samples`` draws of the policy, as distinct
    slates and the share of draws each got (seeded multinomial split per prefix)."""
    rng = np.random.default_rng(seed)
    slates, counts = [], []
    stack = [((), samples)]
    while stack:
        prefix, count = stack.pop()
        if len(prefix) == n_slots:
            slates.append(prefix)
            counts.append(count)
            continue
        pmf = _pmf(pmf_fn, len(prefix), prefix)
        drawn = rng.multinomial(count, pmf / pmf.sum())
        stack.extend((prefix + (int(a),), int(drawn[a])) for a in np.flatnonzero(drawn))
    return np.array(slates, dtype=np.int64).reshape(-1, n_slots), np.array(counts) / samples


def slate_marginals(pmf_fn: Callable, n_slots: int, n_actions: int, *,
                    limit: int = ENUMERATION_LIMIT, samples: int = MC_SAMPLES,
                    seed: int = 0) -> SlateMarginals:
    """Marginals and second moment of the policy ``pmf_fn`` (exact up to ``limit``
    slates, else Monte Carlo with ``samples`` draws and ``seed``)."""
    if n_slots < 1 or n_actions < n_slots:
        raise EstimatorError(f"n_slots: must be in 1..n_actions ({n_actions}), got {n_slots}")
    found = enumerate_slates(pmf_fn, n_slots, limit)
    exact = found is not None
    slates, probs = found if exact else sample_slates(pmf_fn, n_slots, samples, seed)
    marginals = np.zeros((n_slots, n_actions))
    np.add.at(marginals, (np.broadcast_to(np.arange(n_slots), slates.shape), slates),
              probs[:, None])
    flat = np.arange(n_slots) * n_actions + slates  # (S, L) indicator positions
    d = n_slots * n_actions
    second = np.zeros((d, d))
    np.add.at(second, (flat[:, :, None], flat[:, None, :]), probs[:, None, None])
    return SlateMarginals(marginals, second, exact, len(probs) if exact else samples)


def slate_value(pmf_fn: Callable, n_slots: int, reward_fn: Callable,
                limit: int = ENUMERATION_LIMIT) -> float:
    """E[Σ_j r_j] under the policy, exactly: ``reward_fn(slate) -> (L,)`` expected slot
    rewards of one slate (a tuple of actions). None above ``limit`` slates.

    >>> import numpy as np
    >>> first = lambda j, earlier: np.array([0.5, 0.5]) if j == 0 else np.eye(2)[1 - earlier[0]]
    >>> slate_value(first, 2, lambda s: np.array([1.0 if s[0] == 0 else 0.0, 0.5]))
    1.0
    """
    found = enumerate_slates(pmf_fn, n_slots, limit)
    if found is None:
        return None
    slates, probs = found
    return float(sum(p * np.sum(reward_fn(tuple(s))) for s, p in zip(slates.tolist(), probs)))


def _pmf(pmf_fn, j, prefix) -> np.ndarray:
    pmf = np.asarray(pmf_fn(j, prefix), dtype=np.float64)
    if pmf.ndim != 1 or not pmf.min() >= 0.0 or not abs(pmf.sum() - 1.0) <= PMF_TOLERANCE:
        raise EstimatorError(f"pmf_fn({j}, {prefix}): must return a pmf over the actions, "
                             f"got {pmf.tolist()}")
    if prefix and not pmf[list(prefix)].max() == 0.0:
        raise EstimatorError(f"pmf_fn({j}, {prefix}): gives mass to an action an earlier "
                             "slot already shows")
    return pmf
