"""Turning scores into probability mass functions, and drawing one action from a pmf.

Sampling lives here and nowhere else: the draw uses a uniform number derived from
(loop seed, event id) by keyed blake2b, a counter-based generator, so any logged
decision can be replayed exactly from its event id.

Examples
--------
>>> greedy_pmf(np.array([1.0, 3.0, 3.0, 0.0]), 0.2).tolist()
[0.05, 0.45, 0.45, 0.05]
>>> sample_index(np.array([0.25, 0.75]), seed=7, event_id="e-1") == sample_index(
...     np.array([0.25, 0.75]), seed=7, event_id="e-1")
True
"""
from __future__ import annotations

import bisect
import hashlib
import itertools
import math

import numpy as np

from .errors import FeatureError


def greedy_pmf(scores: np.ndarray, epsilon: float) -> np.ndarray:
    """ε-greedy pmf: (1−ε) split evenly over the argmax ties, plus ε/K everywhere.

    The greedy action (when unique) gets exactly 1−ε+ε/K and every other ε/K.
    """
    values = scores.tolist()  # K is small: Python beats a chain of numpy calls here
    k, top = len(values), max(values)
    floor = epsilon / k
    pmf, ties = [floor] * k, values.count(top)
    if ties == 1:
        pmf[values.index(top)] = 1.0 - epsilon + floor
    else:
        share = (1.0 - epsilon) / ties + floor
        for i, v in enumerate(values):
            if v == top:
                pmf[i] = share
    return np.array(pmf)


def argmax_frequencies(scores: np.ndarray) -> np.ndarray:
    """For scores (K, M): the share of the M columns each row wins, ties split evenly."""
    best = scores == scores.max(axis=0, keepdims=True)
    return (best / best.sum(axis=0, keepdims=True)).mean(axis=1)


def stable_hash(seed: int, text: str) -> int:
    """A 64-bit integer that depends only on (seed, text), in every process."""
    digest = hashlib.blake2b(str(text).encode("utf-8", "surrogatepass"), digest_size=8,
                             key=int(seed).to_bytes(8, "little", signed=True)).digest()
    return int.from_bytes(digest, "little")


def uniform(seed: int, event_id: str) -> float:
    """A number in [0, 1) that depends only on (seed, event id)."""
    return (stable_hash(seed, event_id) >> 11) * 2.0 ** -53


def sample_index(pmf: np.ndarray, seed: int, event_id: str) -> int:
    """Draw an index from ``pmf`` reproducibly from (loop seed, event id).

    Only indices with positive probability can be drawn.
    """
    values = np.asarray(pmf, dtype=np.float64)
    if values.ndim != 1:
        raise FeatureError("pmf", "must be a non-empty vector of non-negative numbers")
    values = values.tolist()  # K is small: Python beats a chain of numpy calls here
    cdf = list(itertools.accumulate(values))
    if not values or min(values) < 0 or not math.isfinite(cdf[-1]) or cdf[-1] <= 0:
        raise FeatureError("pmf", "must be a non-empty vector of non-negative numbers")
    i = min(bisect.bisect_right(cdf, uniform(seed, event_id) * cdf[-1]), len(values) - 1)
    while values[i] == 0.0:  # u at the very top of the cdf: step back to a real action
        i -= 1
    return i
