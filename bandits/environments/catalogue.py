"""Recommendation: a catalogue of items with features, a different candidate subset
for every request, clicks driven by how the user's segment likes an item's kind.

Item i has a category, a price band and a quality score. A user belongs to a segment
with its own taste for categories and price bands. The click probability is
``sigmoid(base + 0.4·quality[i] + taste[s, category[i]] + price[s, band[i]])``: an item
is good for some users and not for others, which a shared model learns through
context × item interactions and can apply to items it has never shown.
"""
from __future__ import annotations

import numpy as np

from ..params import check_int, check_number
from .base import Environment
from .synthetic import sigmoid

BANDS = ("low", "mid", "high")
DEVICES = ("mobile", "desktop")


class CatalogueEnv(Environment):
    """Contexts ``{"user": {"segment", "device"}}``; candidates ``item-NNNN`` with
    ``{"item": {"category", "price", "quality"}}`` features.

    Parameters
    ----------
    n_items : int
        Catalogue size.
    n_candidates : int
        Candidates per request, drawn without replacement.
    n_categories, n_segments : int
    base_ctr : float
        Typical click-through rate.
    seed : int
    """

    name = "catalogue"

    def __init__(self, n_items: int = 500, n_candidates: int = 10, n_categories: int = 8,
                 n_segments: int = 6, base_ctr: float = 0.04, seed: int = 0):
        super().__init__(seed)
        self.n_items = check_int("n_items", n_items, 2)
        self.n_candidates = check_int("n_candidates", n_candidates, 2, self.n_items)
        self.n_categories = check_int("n_categories", n_categories, 1)
        self.n_segments = check_int("n_segments", n_segments, 1)
        self.base_ctr = check_number("base_ctr", base_ctr, 0.0, 1.0, True, True)
        rng = np.random.default_rng((seed, 2**32))
        self.category = rng.integers(n_categories, size=n_items)
        self.band = rng.integers(len(BANDS), size=n_items)
        self.quality = np.round(rng.normal(size=n_items), 2)
        self.taste = rng.normal(0.0, 0.9, (n_segments, n_categories))
        self.price = rng.normal(0.0, 0.5, (n_segments, len(BANDS)))
        self.base = np.log(self.base_ctr / (1 - self.base_ctr))
        self.items = [{"id": f"item-{i:04d}", "features": {"item": {
            "category": f"c{self.category[i]}", "price": BANDS[self.band[i]],
            "quality": float(self.quality[i])}}} for i in range(n_items)]

    def ctr(self, segment: int, items) -> np.ndarray:
        """Click probability of ``items`` (indices) for a user of ``segment``."""
        items = np.asarray(items)
        return sigmoid(self.base + 0.4 * self.quality[items] + self.taste[segment, self.category[items]]
                       + self.price[segment, self.band[items]])

    def _round(self, t, rng):
        s = int(rng.integers(self.n_segments))
        items = rng.choice(self.n_items, self.n_candidates, replace=False)
        context = {"user": {"segment": f"s{s}", "device": DEVICES[int(rng.integers(2))]}}
        return self._make(t, context, [self.items[i] for i in items], self.ctr(s, items))

    def describe(self):
        return f"{self.name}: {self.n_items} items, {self.n_candidates} candidates per request"
