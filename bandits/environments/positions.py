"""Position-biased clicks: a catalogue shown as a list whose lower places are seen less.

A user of segment ``s`` clicks item ``i`` shown at position ``j`` (0 is the top) with
probability ``relevance(s, i) · examination(j)``: the examination hypothesis of
position-based click models (Richardson et al. 2007; Chuklin, Markov & de Rijke 2015).

- relevance: ``sigmoid(base + taste[s, category[i]] + 0.5·quality[i])``, how likely the
  user is to click the item once they look at it; ``base`` is the logit of
  ``base_ctr``, ``taste`` a segment × category table, ``quality`` a per-item score;
- examination: ``1 / (1 + j)`` (``decay=None``, the default) or ``decay ** j``, how
  likely a user is to look at place ``j`` at all; 1 at the top, decreasing.

Clicks on the places of one list are independent draws (no cascade): the list with the
most expected clicks shows the most relevant items in relevance order. Round ``t``
(user, device, candidates) is a function of ``(seed, t)``; the clicks of a shown list
are drawn from one uniform per position seeded by ``(seed, t)``, so two policies that
show lists to the same users see common random numbers. ``Round.expected`` holds each
candidate's relevance, which is its click probability at the top. Pure: no I/O.

Examples
--------
>>> env = PositionEnv(n_items=6, n_candidates=4, n_positions=3, n_categories=2,
...                   n_segments=2, seed=1)
>>> rnd = env.round(0)
>>> rnd.context
{'user': {'segment': 's0', 'device': 'mobile'}}
>>> rnd.ids
['item-0000', 'item-0003', 'item-0004', 'item-0001']
>>> env.examination(3).tolist()
[1.0, 0.5, 0.3333333333333333]
>>> p = env.click_probabilities(rnd, [2, 0, 1])
>>> bool(np.allclose(p, rnd.expected[[2, 0, 1]] * [1, 1 / 2, 1 / 3]))
True
>>> env.clicks(rnd, [2, 0, 1]).tolist() == env.clicks(rnd, [2, 0, 1]).tolist()
True
>>> best = env.best_list(rnd)
>>> env.expected_clicks(rnd, best) >= env.expected_clicks(rnd, best[::-1])
True
"""
from __future__ import annotations

import numpy as np

from ..params import check_int, check_number
from .base import Environment, Round
from .synthetic import sigmoid

DEVICES = ("mobile", "desktop")


class PositionEnv(Environment):
    """Contexts ``{"user": {"segment", "device"}}``; candidates ``item-NNNN`` with
    ``{"item": {"category", "quality"}}`` features; lists of ``n_positions`` places.

    Parameters
    ----------
    n_items : int
        Catalogue size.
    n_candidates : int
        Candidates per request, drawn without replacement (K).
    n_positions : int
        Places in the list shown (P <= K).
    n_categories, n_segments : int
        Item categories and user segments; ``taste`` (n_segments, n_categories) is
        drawn from N(0, ``contrast``²).
    base_ctr : float
        Relevance of an average item (before taste and quality), in (0, 1).
    contrast : float
        Standard deviation of the segments' tastes: how much the right item matters.
    decay : float or None
        Examination ``decay ** j`` at position ``j``; None: ``1 / (1 + j)``.
    seed : int
    """

    name = "positions"

    def __init__(self, n_items: int = 1000, n_candidates: int = 50, n_positions: int = 5,
                 n_categories: int = 10, n_segments: int = 8, base_ctr: float = 0.1,
                 contrast: float = 1.5, decay: float | None = None, seed: int = 0):
        super().__init__(seed)
        self.n_items = check_int("n_items", n_items, 2)
        self.n_candidates = check_int("n_candidates", n_candidates, 2, self.n_items)
        self.n_positions = check_int("n_positions", n_positions, 1, self.n_candidates)
        self.n_categories = check_int("n_categories", n_categories, 1)
        self.n_segments = check_int("n_segments", n_segments, 1)
        self.base_ctr = check_number("base_ctr", base_ctr, 0.0, 1.0, True, True)
        self.contrast = check_number("contrast", contrast, 0.0)
        self.decay = None if decay is None else check_number("decay", decay, 0.0, 1.0, True)
        rng = np.random.default_rng((seed, 2**32))
        self.category = rng.integers(n_categories, size=n_items)
        self.quality = np.round(rng.normal(size=n_items), 2)
        taste = rng.normal(0.0, self.contrast, (n_segments, n_categories))
        self.taste = taste - taste.mean(axis=0) if n_segments > 1 else taste
        self.base = np.log(self.base_ctr / (1 - self.base_ctr))
        self.items = [{"id": f"item-{i:04d}", "features": {"item": {
            "category": f"c{self.category[i]}", "quality": float(self.quality[i])}}}
            for i in range(n_items)]

    def relevance(self, segment: int, items) -> np.ndarray:
        """Click probability of ``items`` (indices into the catalogue) at the top place,
        for a user of ``segment``."""
        items = np.asarray(items)
        return sigmoid(self.base + self.taste[segment, self.category[items]]
                       + 0.5 * self.quality[items])

    def examination(self, n: int) -> np.ndarray:
        """Probability that a user looks at each of the places ``0 .. n-1``, shape (n,)."""
        j = np.arange(n, dtype=float)
        return 1.0 / (1.0 + j) if self.decay is None else self.decay ** j

    def click_probabilities(self, rnd: Round, shown) -> np.ndarray:
        """Click probability of each place of a list: ``shown[j]`` is the candidate's
        index in ``rnd.actions`` shown at place ``j``; shape (len(shown),)."""
        shown = self._check_shown(shown)
        return rnd.expected[shown] * self.examination(len(shown))

    def clicks(self, rnd: Round, shown) -> np.ndarray:
        """Seeded clicks (0.0 or 1.0) on each place of the list: place ``j`` draws with
        the same uniform in round ``rnd.t`` whatever list is shown, shape (len(shown),)."""
        p = self.click_probabilities(rnd, shown)
        u = np.random.default_rng((*rnd.key, 2)).random(self.n_positions)
        return (u[:len(p)] < p).astype(float)

    def expected_clicks(self, rnd: Round, shown) -> float:
        """Expected number of clicks on the list."""
        return float(self.click_probabilities(rnd, shown).sum())

    def best_list(self, rnd: Round) -> list:
        """The list with the most expected clicks: the ``n_positions`` most relevant
        candidates, most relevant first (examination decreases with the place)."""
        order = np.argsort(-rnd.expected, kind="stable")
        return [int(k) for k in order[:self.n_positions]]

    def _check_shown(self, shown) -> np.ndarray:
        shown = np.asarray(shown, dtype=int)
        if shown.ndim != 1 or not 1 <= len(shown) <= self.n_positions \
                or len(set(shown.tolist())) != len(shown) \
                or shown.min() < 0 or shown.max() >= self.n_candidates:
            raise ValueError(f"shown: 1..{self.n_positions} distinct candidate indices "
                             f"in [0, {self.n_candidates}) expected, got {shown.tolist()}")
        return shown

    def _round(self, t, rng):
        s = int(rng.integers(self.n_segments))
        items = rng.choice(self.n_items, self.n_candidates, replace=False)
        context = {"user": {"segment": f"s{s}", "device": DEVICES[int(rng.integers(2))]}}
        return self._make(t, context, [self.items[i] for i in items], self.relevance(s, items))

    def describe(self):
        exam = "1/(1+j)" if self.decay is None else f"{self.decay}^j"
        return (f"{self.name}: {self.n_items} items, {self.n_candidates} candidates per request, "
                f"{self.n_positions} places, examination {exam}")
