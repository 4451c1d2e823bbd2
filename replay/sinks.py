"""Where an evaluation's scored batches go: running sums, or arrays for the bootstrap.

Each scored batch holds the logged rounds, the reward model's q̂ (b, K) and every frozen
candidate's pmf (b, K). :class:`SumSink` folds them into :class:`replay.moments.PolicySums`
and keeps nothing else, so memory does not grow with the log (normal intervals);
:class:`ArraySink` keeps every batch, which the bootstrap's resampling needs. Both give
the same rows to rounding, and two :class:`SumSink` of disjoint shards merge into the
sink of the whole log.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .estimators import ESTIMATORS, MODEL_BASED
from .moments import PolicySums
from .verdict import LOGGING



class SumSink:
    """Per policy (the logger and each frozen candidate) the running sums; the smallest
    logged probability of each candidate's most probable action (its overlap)."""

    def __init__(self, names: list):
        self.names = list(names)
        self.sums = {name: PolicySums() for name in [LOGGING] + self.names}
        self.min_picked = {name: 1.0 for name in self.names}
        self.width = 0
        self.n = 0

    def add(self, rounds, q_hat, pmfs: dict) -> None:
        rows, logged = np.arange(len(rounds)), rounds.logging_pmf
        self.sums[LOGGING].add(rounds.rewards, rounds.propensities, logged, q_hat,
                               rounds.chosen, target_probs=rounds.propensities, offset=self.n)
        for name in self.names:
            pmf = pmfs[name]
            self.sums[name].add(rounds.rewards, rounds.propensities, pmf, q_hat, rounds.chosen,
                                logged, offset=self.n)
            picked = logged[rows, pmf.argmax(axis=1)]
            self.min_picked[name] = min(self.min_picked[name], float(picked.min()))
        self.width = max(self.width, rounds.width)
        self.n += len(rounds)

    def merge(self, other: "SumSink") -> None:
        """Fold in the sink of the log's next shard."""
        for name, sums in self.sums.items():
            sums.merge(other.sums[name])
        for name in self.min_picked:
            self.min_picked[name] = min(self.min_picked[name], other.min_picked[name])
        self.width = max(self.width, other.width)
        self.n += other.n

    def rows(self, estimators, ci, level, n_boot, seed) -> list:
        out = []
        for name, sums in self.sums.items():
            for est in estimators:
                out.append(row(name, *caught(sums.estimate, name=est, level=level)))
        return out

    def overlap(self) -> dict:
        return {name: {"min_propensity": value, "actions": self.width}
                for name, value in self.min_picked.items()}


class ArraySink:
    """Every batch's arrays, stacked at the end (the bootstrap resamples rounds)."""

    def __init__(self, names: list):
        self.names, self.parts, self.n, self.width = list(names), [], 0, 0

    def add(self, rounds, q_hat, pmfs: dict) -> None:
        self.parts.append((dataclasses.replace(rounds, columns=None), q_hat, pmfs))
        self.n += len(rounds)
        self.width = max(self.width, rounds.width)

    def rows(self, estimators, ci, level, n_boot, seed) -> list:
        arrays = _stack(self.parts, self.names)
        out = []
        for name in [LOGGING] + self.names:
            out += _estimate_all(name, arrays, arrays["pmf"].get(name), estimators, ci, level,
                                 n_boot, seed)
        return out

    def overlap(self) -> dict:
        arrays = _stack(self.parts, self.names)
        logged = arrays["pmf"].get(LOGGING)
        if logged is None:
            return {}
        width, out = logged.shape[1], {}
        for name in self.names:
            pmf = arrays["pmf"][name]
            picked = logged[np.arange(len(pmf)), pmf.argmax(axis=1)]
            out[name] = {"min_propensity": float(picked.min()), "actions": width}
        return out


def _stack(parts, names) -> dict:
    """Concatenate the batches' arrays, padding every (n, K) array to the widest batch."""
    if not parts:
        return {"pmf": {}}
    width = max(p[0].width for p in parts)

    def cat(arrays):
        return np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in arrays])

    rounds = [p[0] for p in parts]
    pmf = {LOGGING: cat([r.logging_pmf for r in rounds])}
    pmf.update({name: cat([p[2][name] for p in parts]) for name in names})
    return {"rewards": np.concatenate([r.rewards for r in rounds]),
            "propensities": np.concatenate([r.propensities for r in rounds]),
            "actions": np.concatenate([r.chosen for r in rounds]),
            "q_hat": cat([p[1] for p in parts]), "pmf": pmf}


def _estimate_all(name, arrays, target_pmf, estimators, ci, level, n_boot, seed) -> list:
    """One row per estimator for one policy; warnings are kept on the row."""
    n = arrays["rewards"].size
    target_probs = (arrays["propensities"] if name == LOGGING
                    else target_pmf[np.arange(n), arrays["actions"]])
    inputs = {"rewards": arrays["rewards"], "propensities": arrays["propensities"],
              "target_probs": target_probs, "ci": ci, "level": level, "n_boot": n_boot,
              "seed": seed}
    if any(e in MODEL_BASED for e in estimators):
        inputs.update(q_hat=arrays["q_hat"], target_pmf=target_pmf, actions=arrays["actions"],
                      logging_pmf=None if name == LOGGING else arrays["pmf"][LOGGING])
    return [row(name, *caught(ESTIMATORS[est], **inputs)) for est in estimators]


def caught(fn, **kwargs) -> tuple:
    """``(fn(**kwargs), the distinct warnings it issued)``."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = fn(**kwargs)
    return result, sorted({str(w.message) for w in seen})


def row(policy, estimate, notes) -> dict:
    return {"policy": policy, **estimate.to_dict(), "warnings": notes}
