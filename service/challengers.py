"""Live off-policy evaluation of challengers: progressive records, figures, verdict, gate.

For every joined event the learner asks each challenger for its pmf over the logged
actions *before* learning the batch holding that event (progressive validation: the
pmf never depends on the event's own reward) and keeps one :data:`COLUMNS` record.
Over the last ``evaluation.window`` records:

- SNIPS and DR (:mod:`replay.estimators`) with 95 % normal intervals and the ESS of
  the weights π(a|x)/μ(a|x). DR's reward model is the running mean reward of each
  action id, learned progressively too (events before this one), the same for every
  loop whatever its features. DR needs only Σ_k π(k|x) q̂(x, k) and q̂(x, a) per
  event, so each record is passed to ``replay.estimators.dr`` as a two-column pmf
  ``[π(a|x), 1 − π(a|x)]`` whose second column's q̂ gives that sum.
- The champion's on-policy value over the same events: the mean logged reward.

No I/O here: :mod:`service.challenger_learner` feeds records in, the store keeps them.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from replay.errors import ReplayWarning
from replay.estimators import dr, ips, snips

#: One record per evaluated event: π(a|x) of the challenger, μ(a|x) logged, the reward,
#: Σ_k π(k|x) q̂(k) and q̂(a) of the progressive reward model.
COLUMNS = ("target", "propensity", "reward", "dm", "q_logged")
WIDTH = len(COLUMNS)
LEVEL = 0.95
VERDICTS = ("better", "worse", "undecided")


#: Action ids the DR reward model keeps a mean for (per-request candidates from a large
#: catalogue would otherwise grow it without bound); later ids get the overall mean.
MAX_IDS = 10_000


class RewardMeans:
    """Running mean reward per action id (the DR reward model, at most :data:`MAX_IDS`
    ids); an unseen id gets the mean of every reward so far (0 before the first).

    >>> m = RewardMeans()
    >>> m.add("a", 1.0); m.add("a", 0.0); m.add("b", 1.0)
    >>> m.predict(["a", "b", "c"]).tolist()
    [0.5, 1.0, 0.6666666666666666]
    """

    def __init__(self, state: dict | None = None):
        state = state or {}
        self.sums = {k: tuple(v) for k, v in state.get("actions", {}).items()}
        self.n, self.total = state.get("n", 0), state.get("total", 0.0)

    def add(self, action_id: str, reward: float) -> None:
        kept = self.sums.get(action_id)
        if kept is not None or len(self.sums) < MAX_IDS:
            n, s = kept or (0, 0.0)
            self.sums[action_id] = (n + 1, s + reward)
        self.n, self.total = self.n + 1, self.total + reward

    def predict(self, action_ids) -> np.ndarray:
        default = self.total / self.n if self.n else 0.0
        out = np.empty(len(action_ids))
        for i, aid in enumerate(action_ids):
            n, s = self.sums.get(aid, (0, 0.0))
            out[i] = s / n if n else default
        return out

    def state(self) -> dict:
        return {"n": self.n, "total": self.total,
                "actions": {k: list(v) for k, v in self.sums.items()}}


def record(pmf: np.ndarray, ids, index: int, propensity: float, reward: float,
           means: RewardMeans) -> tuple:
    """The :data:`COLUMNS` record of one event, then the event's reward is learned by
    ``means`` (so the next event's q̂ includes it, this one's does not).

    >>> m = RewardMeans({"n": 2, "total": 1.0, "actions": {"a": [1, 1.0], "b": [1, 0.0]}})
    >>> record(np.array([0.25, 0.75]), ["a", "b"], 0, 0.5, 1.0, m)
    (0.25, 0.5, 1.0, 0.25, 1.0)
    >>> m.predict(["a"]).tolist()
    [1.0]
    """
    q = means.predict(ids)
    out = (float(pmf[index]), float(propensity), float(reward), float(pmf @ q), float(q[index]))
    means.add(ids[index], float(reward))
    return out


class Window:
    """The last ``size`` records, oldest first, kept as (m, WIDTH) float64 blocks."""

    def __init__(self, size: int, blocks=()):
        self.size, self.blocks = size, [b for b in blocks if len(b)]
        self.rows = sum(len(b) for b in self.blocks)
        self._trim()

    def add(self, block: np.ndarray) -> None:
        if len(block):
            self.blocks.append(block)
            self.rows += len(block)
            self._trim()

    def _trim(self) -> None:
        """Drop whole blocks while the rest still holds ``size`` rows; the first block
        kept is cut when :meth:`array` is read."""
        while self.blocks and self.rows - len(self.blocks[0]) >= self.size:
            self.rows -= len(self.blocks.pop(0))

    def array(self) -> np.ndarray:
        if not self.blocks:
            return np.empty((0, WIDTH))
        return np.concatenate(self.blocks)[-self.size:]


def figures(rows: np.ndarray) -> dict:
    """SNIPS and DR of the challenger and the champion's on-policy value over ``rows``
    (the :data:`COLUMNS` records), JSON-ready: an interval that cannot be sized (ESS
    under 30, no spread) is ``null``.

    >>> rows = np.array([[1.0, 0.5, 1.0, 0.6, 0.5], [0.0, 0.5, 0.0, 0.2, 0.5]] * 20)
    >>> f = figures(rows)
    >>> f["n"], f["ess"], f["snips"]["value"], f["champion"]["value"]
    (40, 20.0, 1.0, 0.5)
    >>> round(f["dr"]["value"], 6)    # mean of 0.6 + 2·(1 − 0.5) and 0.2 + 0
    0.9
    >>> f["snips"]["low"] is None     # ESS 20 < 30: no interval
    True
    """
    n = len(rows)
    if n == 0:
        empty = {"value": None, "low": None, "high": None}
        return {"n": 0, "ess": 0.0, "snips": empty, "dr": empty,
                "champion": {**empty, "n": 0}}
    target, prop, reward, dm_sum, q_logged = (rows[:, i] for i in range(WIDTH))
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = np.where(target < 1.0, (dm_sum - target * q_logged) / (1.0 - target), 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReplayWarning)
        ch_snips = (snips(rewards=reward, propensities=prop, target_probs=target, level=LEVEL)
                    if target.sum() > 0 else None)
        ch_dr = dr(rewards=reward, propensities=prop, target_probs=target,
                   q_hat=np.column_stack([q_logged, rest]),
                   target_pmf=np.column_stack([target, 1.0 - target]),
                   actions=np.zeros(n, dtype=np.int64), level=LEVEL)
        champion = ips(rewards=reward, propensities=prop, target_probs=prop, level=LEVEL)
    return {"n": n, "ess": ch_dr.ess, "snips": _shown(ch_snips), "dr": _shown(ch_dr),
            "champion": {**_shown(champion), "n": n}}


def _shown(est) -> dict:
    if est is None:
        return {"value": None, "low": None, "high": None}
    return {k: (None if math.isnan(v) else float(v))
            for k, v in (("value", est.value), ("low", est.low), ("high", est.high))}


def gate(fig: dict, promotion: dict) -> dict:
    """Whether a challenger with figures ``fig`` may be promoted: n ≥ min_events, ESS ≥
    min_ess, and the gate estimator's lower bound ≥ the champion's value + margin.
    ``{"passes", "reasons", "bound", "needed"}``; ``reasons`` names every rule missed.

    >>> fig = {"n": 5000, "ess": 900.0, "dr": {"value": 0.6, "low": 0.55, "high": 0.65},
    ...        "champion": {"value": 0.5}}
    >>> rule = {"min_events": 1000, "min_ess": 100, "margin": 0.02, "estimator": "dr"}
    >>> gate(fig, rule)["passes"]
    True
    >>> gate(fig, {**rule, "margin": 0.1})["reasons"]
    ['dr lower bound 0.55 < champion 0.5 + margin 0.1']
    """
    est, champ = fig.get(promotion["estimator"], {}), fig.get("champion", {}).get("value")
    reasons = []
    if fig["n"] < promotion["min_events"]:
        reasons.append(f"{fig['n']} events < min_events {promotion['min_events']}")
    if fig["ess"] < promotion["min_ess"]:
        reasons.append(f"ESS {fig['ess']:.1f} < min_ess {promotion['min_ess']:g}")
    low = est.get("low")
    needed = None if champ is None else champ + promotion["margin"]
    if low is None or needed is None:
        reasons.append(f"no {promotion['estimator']} interval yet")
    elif low < needed - 1e-12:
        reasons.append(f"{promotion['estimator']} lower bound {low:.4g} < champion "
                       f"{champ:.4g} + margin {promotion['margin']:g}")
    return {"passes": not reasons, "reasons": reasons, "bound": low, "needed": needed}


def verdict(fig: dict, promotion: dict) -> str:
    """``better`` when the gate passes, ``worse`` when the gate estimator's upper bound
    is under the champion's value (with the gate's n and ESS), else ``undecided``.

    >>> rule = {"min_events": 10, "min_ess": 10, "margin": 0.0, "estimator": "snips"}
    >>> verdict({"n": 50, "ess": 40.0, "snips": {"low": 0.1, "high": 0.3},
    ...          "champion": {"value": 0.5}}, rule)
    'worse'
    """
    if gate(fig, promotion)["passes"]:
        return "better"
    high, champ = fig.get(promotion["estimator"], {}).get("high"), fig["champion"].get("value")
    enough = fig["n"] >= promotion["min_events"] and fig["ess"] >= promotion["min_ess"]
    if enough and high is not None and champ is not None and high < champ:
        return "worse"
    return "undecided"
