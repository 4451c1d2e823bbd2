"""UI treatments: a fixed set of 4-8 variants whose click-through depends on who looks.

A visitor is a segment: device × new/returning × daypart (24 segments, drawn with
realistic, unequal frequencies). Treatment k's click probability in a segment is
``sigmoid(base[k] + device[k, d] + visitor[k, v] + daypart[k, h])``, drawn once from
the seed: the best treatment differs between segments, so a contextual policy can
beat the best single treatment.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..params import check_number
from .base import Environment, check_ids
from .synthetic import sigmoid

DEVICES = ("mobile", "desktop", "tablet")
VISITORS = ("new", "returning")
DAYPARTS = ("morning", "afternoon", "evening", "night")
_P_DEVICE = (0.55, 0.35, 0.10)
_P_VISITOR = (0.6, 0.4)


class TreatmentEnv(Environment):
    """Bernoulli clicks on fixed treatments; contexts ``{"user": {"device", "visitor"},
    "time": {"daypart"}}``.

    Parameters
    ----------
    actions : list of str
        Treatment ids, 4 to 8 of them (a loop's ``actions``).
    base_ctr : float
        Typical click-through rate, around which each treatment's base is drawn.
    contrast : float
        Scale of the segment effects (log-odds); 0 makes context irrelevant.
    seed : int
    """

    name = "treatments"

    def __init__(self, actions=("hero-a", "hero-b", "hero-c", "hero-d"), base_ctr: float = 0.05,
                 contrast: float = 1.0, seed: int = 0):
        super().__init__(seed)
        ids = check_ids("actions", actions, 4, 8)
        self.base_ctr = check_number("base_ctr", base_ctr, 0.0, 1.0, True, True)
        self.contrast = check_number("contrast", contrast, 0.0)
        k = len(ids)
        rng = np.random.default_rng((seed, 2**32))
        base = np.log(self.base_ctr / (1 - self.base_ctr)) + rng.normal(0.0, 0.2, k)
        dev = rng.normal(0.0, 0.6, (k, len(DEVICES))) * self.contrast
        vis = rng.normal(0.0, 0.4, (k, len(VISITORS))) * self.contrast
        day = rng.normal(0.0, 0.25, (k, len(DAYPARTS))) * self.contrast
        #: Click probability per segment (device, visitor, daypart) and treatment.
        self.ctr = sigmoid(base[None, None, None, :] + dev.T[:, None, None, :]
                           + vis.T[None, :, None, :] + day.T[None, None, :, :])
        #: How often each segment visits, same shape as ``ctr[..., 0]``.
        self.weights = np.einsum("d,v,h->dvh", _P_DEVICE, _P_VISITOR, np.full(4, 0.25))
        self.actions = [{"id": a, "features": {}} for a in ids]

    @staticmethod
    def segments():
        """Every (device, visitor, daypart), in the order of ``ctr``'s first axes."""
        return list(itertools.product(range(len(DEVICES)), range(len(VISITORS)), range(len(DAYPARTS))))

    @staticmethod
    def context_of(segment) -> dict:
        d, v, h = segment
        return {"user": {"device": DEVICES[d], "visitor": VISITORS[v]}, "time": {"daypart": DAYPARTS[h]}}

    def _round(self, t, rng):
        d = rng.choice(len(DEVICES), p=_P_DEVICE)
        v = rng.choice(len(VISITORS), p=_P_VISITOR)
        h = rng.integers(len(DAYPARTS))
        return self._make(t, self.context_of((d, v, h)), self.actions, self.ctr[d, v, h])

    def describe(self):
        return f"{self.name}: {len(self.actions)} treatments, CTR around {self.base_ctr:g}"
