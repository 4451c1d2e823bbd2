"""Drift detection on the events a loop learns: pure math, no Redis (glue:
:mod:`service.drift_learner`).

Three detectors watch each loop:

- **reward**: a sequential change detector on the joined rewards, ADWIN (Bifet and
  Gavaldà 2007) or Page-Hinkley (Page 1954), from ``river``. Only a *drop* counts as a
  detection: a rising reward is the model learning. After a detection the state is
  ``"drift"`` until ``window`` more events passed without another one.
- **context**: for each context namespace, a histogram of its features over
  :data:`BUCKETS` hashed buckets (a string feature is ``name=value``, a number is its
  name plus a binned value, a bag one ``name=item`` per item), per tumbling window of
  ``window`` events; each full window is compared with the window before it by the
  population stability index (:func:`psi`). PSI above ``psi_threshold``: drifted.
- **actions**: the PSI of the chosen-action shares, same windows.

Comparing adjacent windows (rather than a frozen reference) follows a slow seasonal
change without firing and flags an abrupt one in the first window that holds it; the
flag then stays for that window's comparison, and ``detections`` / ``last_drifted``
keep the record.

References: Bifet, A. and Gavaldà, R. (2007), Learning from time-changing data with
adaptive windowing, SDM. Page, E. S. (1954), Continuous inspection schemes,
Biometrika 41. Yurdakul, B. (2018), Statistical properties of population stability
index, Western Michigan University.

Examples
--------
>>> round(psi([50, 50], [50, 50]), 6)
0.0
>>> round(psi([60, 40], [40, 60]), 4)   # (0.6-0.4)·ln(1.5) + (0.4-0.6)·ln(2/3)
0.1622
>>> tokens({"os": "ios", "age": 31, "tags": ["a", "b"], "_debug": 1})
['os=ios', 'age#20', 'tags=a', 'tags=b']
>>> w = Windows(window=4)
>>> for ns in ("x", "x", "x", "x", "y", "y", "y", "y"):
...     done = w.add({"u": {"k": ns}}, "a1")
>>> done["context"]["namespaces"]["u"]["drifted"], done["actions"]["drifted"]
(True, False)
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import replace

import numpy as np

from .monitoring_config import DETECTORS

#: Hashed feature buckets per namespace (and for a catalogue loop's chosen actions).
BUCKETS = 32
#: Share given to an empty bucket in :func:`psi` (keeps the logarithm finite).
EPSILON = 1e-4
#: Numeric bins per doubling of ``1 + |value|`` (4: each bin ~19 % wide).
BINS_PER_OCTAVE = 4


def psi(recent, reference, eps: float = EPSILON) -> float:
    """Population stability index Σ (pᵢ − qᵢ) ln(pᵢ / qᵢ) of two histograms.

    ``recent`` and ``reference`` are counts over the same buckets, shape (B,); each
    is normalised to shares, a share under ``eps`` (an empty bucket) counts as ``eps``.
    0 for equal distributions; 0.1-0.25 is usually read as a moderate shift, above
    0.25 as a large one.
    """
    p = np.asarray(recent, dtype=np.float64)
    q = np.asarray(reference, dtype=np.float64)
    p = np.maximum(p / max(p.sum(), 1e-300), eps)
    q = np.maximum(q / max(q.sum(), 1e-300), eps)
    return float(np.sum((p - q) * np.log(p / q)))


def numeric_bin(value: float) -> int:
    """The signed bin of a number: ``sign · floor(BINS_PER_OCTAVE · log2(1 + |v|))``.

    >>> numeric_bin(0.0), numeric_bin(1.0), numeric_bin(-1.0), numeric_bin(31)
    (0, 4, -4, 20)
    """
    v = float(value)
    if not math.isfinite(v):
        return 10**6
    b = int(BINS_PER_OCTAVE * math.log2(1.0 + abs(v)))
    return -b if v < 0 else b


def tokens(features: dict) -> list:
    """The tokens a namespace's features count as (``_`` keys are metadata, skipped)."""
    out = []
    for name, value in features.items():
        if type(name) is str and name[:1] == "_":
            continue
        kind = type(value)
        if kind in (int, float):
            out.append(f"{name}#{numeric_bin(value)}")
        elif kind is list:
            out.extend(f"{name}={item}" for item in value)
        elif kind is dict:  # a bag as counts, or a nested object: one token per key
            out.extend(f"{name}={key}" for key in value)
        else:
            out.append(f"{name}={value}")
    return out


def bucket(token: str, n: int = BUCKETS) -> int:
    """A stable bucket in ``0..n-1`` (CRC-32: the same in every process)."""
    return zlib.crc32(token.encode("utf-8", "surrogatepass")) % n


def raise_floor(decision, epsilon: float):
    """``decision`` with its pmf mixed with the uniform one, (1 − ε)·pmf + ε/K, when
    some action's probability is under ε/K (the floor a correction raised); else as
    it is. The sampled action's logged probability is this pmf's.

    >>> from bandits.types import Decision
    >>> d = Decision(("a", "b"), np.array([0.95, 0.05]), np.array([1.0, 0.0]), "p")
    >>> raise_floor(d, 0.2).pmf.tolist()
    [0.86, 0.14]
    >>> raise_floor(d, 0.1) is d   # 0.05 is the floor already
    True
    """
    pmf = np.asarray(decision.pmf, dtype=np.float64)
    floor = epsilon / len(pmf)
    if pmf.min() >= floor:
        return decision
    return replace(decision, pmf=(1.0 - epsilon) * pmf + floor)


class Windows:
    """Context and action histograms over tumbling windows of ``window`` events.

    ``add(context, action_id)`` counts one event; when a window fills it is compared
    with the one before (if any) and :meth:`add` returns the figures, else None.
    ``hashed_actions``: count chosen actions in :data:`BUCKETS` hashed buckets (a
    catalogue loop) rather than by id (a loop with fixed actions).
    """

    def __init__(self, window: int, threshold: float = 0.2, hashed_actions: bool = False):
        self.window, self.threshold, self.hashed_actions = window, threshold, hashed_actions
        self.n = 0
        self.seen = 0              # events counted in every window so far
        self.current: dict = {}    # namespace -> counts (B,)
        self.actions: dict = {}    # action key -> count
        self.reference = None      # (namespace counts, action counts) of the last full window
        self.context_figures: dict = {"window": window, "namespaces": {}, "drifted": False}
        self.action_figures: dict = {"psi": None, "drifted": False}
        self.detections = 0
        self.last_drifted = None

    def add(self, context: dict, action_id: str) -> dict | None:
        for ns, feats in context.items():
            if (type(ns) is str and ns[:1] == "_") or type(feats) is not dict:
                continue
            counts = self.current.get(ns)
            if counts is None:
                counts = self.current[ns] = np.zeros(BUCKETS)
            for tok in tokens(feats):
                counts[bucket(ns + ":" + tok)] += 1
        key = f"#{bucket(action_id)}" if self.hashed_actions else action_id
        self.actions[key] = self.actions.get(key, 0) + 1
        self.n += 1
        self.seen += 1
        if self.n < self.window:
            return None
        return self._close()

    def _close(self) -> dict | None:
        full = (self.current, self.actions)
        self.current, self.actions, self.n = {}, {}, 0
        before, self.reference = self.reference, full
        if before is None:
            return None
        namespaces = {}
        for ns in sorted(set(full[0]) | set(before[0])):
            value = psi(full[0].get(ns, np.zeros(BUCKETS)), before[0].get(ns, np.zeros(BUCKETS)))
            namespaces[ns] = {"psi": round(value, 6), "drifted": value > self.threshold}
        ids = sorted(set(full[1]) | set(before[1]))
        a_psi = psi([full[1].get(i, 0) for i in ids], [before[1].get(i, 0) for i in ids])
        self.context_figures = {"window": self.window, "namespaces": namespaces,
                                "drifted": any(v["drifted"] for v in namespaces.values()),
                                "events": self.seen}
        self.action_figures = {"psi": round(a_psi, 6), "drifted": a_psi > self.threshold,
                               "events": self.seen}
        if self.context_figures["drifted"] or self.action_figures["drifted"]:
            self.detections += 1
            self.last_drifted = time.time()
        self.context_figures["last_drifted"] = self.last_drifted
        return {"context": self.context_figures, "actions": self.action_figures}


class RewardDetector:
    """A drop detector on a reward stream: ``update(x)`` is True when a drop is detected.

    Parameters
    ----------
    detector : {"adwin", "page_hinkley"}
    delta : float, ADWIN's confidence δ (smaller: fewer false alarms, later detection)
    hold : int, events the state stays ``"drift"`` after a detection
    threshold : float, Page-Hinkley's threshold λ on the cumulative drop (its δ is
        0.005): about 100 suits click-like rewards in [0, 1]; scale it with the rewards

    Examples
    --------
    >>> import random
    >>> rng, d = random.Random(1), RewardDetector("adwin", 0.002, 5000)
    >>> first = [i for i in range(30_000)
    ...          if d.update(float(rng.random() < (0.10 if i < 20_000 else 0.05)))]
    >>> 20_000 < first[0] < 22_000, d.figures()["detections"], d.figures()["state"]
    (True, 1, 'ok')
    """

    def __init__(self, detector: str = "adwin", delta: float = 0.002, hold: int = 5000,
                 threshold: float = 100.0):
        if detector not in DETECTORS:
            raise ValueError(f"detector: must be one of {', '.join(DETECTORS)}, got {detector!r}")
        self.kind, self.hold, self.delta, self.threshold = detector, hold, delta, threshold
        self.model = None  # built with the first event: importing river takes seconds
        self.events = self.detections = 0
        self.last_detected = None
        self.since = None            # events since the last detection
        self.segment = [0.0, 0]      # reward sum and count since the last detection
        self.reference = None        # mean reward before the last detection

    def _build(self):
        from river import drift  # imported here: the API workers never need it

        if self.kind == "adwin":
            return drift.ADWIN(delta=self.delta)
        return drift.PageHinkley(mode="down", delta=0.005, threshold=self.threshold)

    def update(self, x: float) -> bool:
        m = self.model
        if m is None:
            m = self.model = self._build()
        adwin = self.kind == "adwin"
        if adwin:
            total, width = m.total, m.width
        m.update(x)
        self.events += 1
        self.segment[0] += x
        self.segment[1] += 1
        if self.since is not None:
            self.since += 1
        if not m.drift_detected:
            return False
        if adwin:  # the part ADWIN dropped is what the recent window is compared with
            dropped = width + 1 - m.width
            before = (total + x - m.total) / dropped if dropped > 0 else m.estimation
            if m.estimation >= before:
                return False  # a rise: the model learning, not a drift
            self.reference = before
        else:
            self.reference = self.segment[0] / self.segment[1]
        self.detections += 1
        self.last_detected = time.time()
        self.since = 0
        self.segment = [0.0, 0]
        return True

    @property
    def state(self) -> str:
        return "drift" if self.since is not None and self.since < self.hold else "ok"

    def mean_recent(self):
        if self.model is None:
            return None
        if self.kind == "adwin":
            return float(self.model.estimation) if self.model.width else None
        return self.segment[0] / self.segment[1] if self.segment[1] else None

    def figures(self) -> dict:
        """The ``reward`` field of a loop's drift hash."""
        recent = self.mean_recent()
        return {"detector": self.kind, "state": self.state, "events": self.events,
                "detections": self.detections, "last_detected": self.last_detected,
                "mean_recent": None if recent is None else round(recent, 6),
                "mean_reference": None if self.reference is None else round(self.reference, 6)}
