"""Evaluate candidate policies and the logging policy on one log, in one table.

Two streaming passes over the log (three with ``train_fraction``, whose first pass
only counts):

1. the earlier slice (``train_fraction``) trains the candidates on the logged
   feedback, in log order; the later slice feeds the reward model's fold statistics;
2. on the later slice, every frozen candidate's pmf is computed for each logged context,
   the cross-fitted reward model scores every action, and candidates with
   ``learn = "replay"`` run through rejection sampling.

The logging policy is evaluated from the logged pmfs themselves, so its IPS equals the
mean logged reward: a built-in sanity check of the log. :meth:`Evaluation.verdict`
states the outcome in one line with the next step (:mod:`replay.verdict`), using each
candidate's overlap with the log: the smallest logged probability of the actions it
picks (its most probable action per round; for replay, the log's minimum propensity,
which sets its acceptance rate) and K.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bandits import BanditError, Feedback

from .estimators import ESTIMATORS
from .errors import ReplayError
from .logs import LoggedRounds
from .readers import LogSource, ReadReport
from .rejection import RejectionReplay
from .sinks import ArraySink, SumSink, caught, row
from .token_score import TokenMap, policy_pmf, supports
from .reward_model import CrossFitRidge
from .verdict import LOGGING, Verdict, conclude

DEFAULT_ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr")


@dataclass
class Evaluation:
    """Rows of (policy, estimator, value, low, high, level, ess, n, ci, warnings); per
    candidate its ``overlap`` with the log (``min_propensity``, ``actions``)."""

    rows: list
    report: ReadReport
    rounds: int
    train_rounds: int
    dropped: list = field(default_factory=list)
    overlap: dict = field(default_factory=dict)

    def verdict(self) -> Verdict:
        """The one-line outcome and next step; round counts cover the whole log."""
        scale = (self.rounds + self.train_rounds + len(self.dropped)) / max(1, self.rounds)
        return conclude(self.rows, self.overlap, scale)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "log": self.report.to_dict(), "rounds": self.rounds,
                "train_rounds": self.train_rounds,
                "dropped": [list(d) for d in self.dropped], "overlap": self.overlap,
                "verdict": self.verdict().to_dict()}


def evaluate(source: LogSource, candidates: list, *, estimators=DEFAULT_ESTIMATORS,
             ci="normal", level=0.95, n_boot=1000, folds=5, train_fraction=None,
             reward_featurizer=None, chunk_size=None, limit=None, seed=0,
             progress=None, in_memory=False) -> Evaluation:
    """Estimate every candidate's value (and the logger's) on ``source``.

    ``progress(stage, rounds)`` is called after each chunk (stage ``"count"``, ``"fit"``
    or ``"score"``). Normal intervals come from running sums (:mod:`replay.sinks`), so
    memory does not grow with the log; ``in_memory`` keeps every scored round's arrays
    instead and runs :mod:`replay.estimators` on them (the bootstrap always does).
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise ReplayError(f"estimators: unknown {', '.join(unknown) or '(none given)'} "
                          f"(allowed: {', '.join(ESTIMATORS)})")
    names = [c.name for c in candidates]
    if len(set(names)) != len(names) or LOGGING in names:
        raise ReplayError(f"candidate names must be distinct and not {LOGGING!r}: {names}")
    progress = progress or (lambda stage, rounds: None)
    chunk_size = chunk_size or source.chunk_rounds
    run = _Run(source, candidates, CrossFitRidge(reward_featurizer, folds), chunk_size, limit,
               progress)
    run.train_rounds = run.split(train_fraction)
    run.fit()
    names = [c.name for c in run.frozen]
    sink = SumSink(names) if ci == "normal" and not in_memory else ArraySink(names)
    run.score(seed, sink)
    if run.n_eval == 0:
        raise ReplayError(f"{source.name}: no rewarded rounds to evaluate\n"
                          + source.report.summary())
    rows = sink.rows(estimators, ci, level, n_boot, seed)
    for name, replay in run.replays.items():
        rows.append(row(name, *caught(replay.estimate, level=level)))
    overlap = sink.overlap()
    overlap.update({name: {"min_propensity": run.min_propensity, "actions": sink.width}
                    for name in run.replays})
    return Evaluation(rows, source.report, run.n_eval, run.train_rounds,
                      sorted(run.dropped.items()), overlap)


class _Run:
    """The passes of one evaluation and what they accumulate."""

    def __init__(self, source, candidates, model, chunk_size, limit, progress):
        self.source, self.candidates, self.model = source, candidates, model
        self.chunk_size, self.limit, self.progress = chunk_size, limit, progress
        self.frozen = [c for c in candidates if c.learn == "frozen"]
        self.tokens = {c.name: TokenMap(c.policy.featurizer) for c in self.frozen
                       if supports(c.policy)}
        self.replays = {}
        self.dropped: dict = {}
        self.train_rounds = self.n_eval = 0
        self.min_propensity = 1.0

    def chunks(self, stage):
        """(global offset, chunk) over the log; reports progress."""
        offset = 0
        for rounds in self.source.chunks(self.chunk_size, self.limit):
            yield offset, rounds
            offset += len(rounds)
            self.progress(stage, offset)

    def split(self, train_fraction) -> int:
        """Rounds of the training slice (0 without ``train_fraction``)."""
        if train_fraction is None:
            return 0
        if not isinstance(train_fraction, (int, float)) or not 0.0 < train_fraction < 1.0:
            raise ReplayError(f"train_fraction: must be in (0, 1), got {train_fraction!r}")
        total = sum(len(r) for _, r in self.chunks("count"))
        return int(total * train_fraction)

    def fit(self) -> None:
        """Pass 1: train candidates on the earlier slice, fit the reward model on the rest."""
        self.accumulate()
        self.model.fit()

    def accumulate(self) -> None:
        """Pass 1 without the final fit: the reward model's statistics (and training)."""
        for offset, rounds in self.chunks("fit"):
            cut = max(0, min(len(rounds), self.train_rounds - offset))
            if cut:
                self._train(rounds.slice(0, cut))
            if cut == len(rounds):
                continue
            later = rounds.slice(cut, len(rounds))
            if self._columnar(later):
                self.model.add_columns(later, offset + cut - self.train_rounds + np.arange(len(later)))
            else:
                later, feats, keep = self._features(later)
                if len(later):
                    self.model.add(later, offset + cut - self.train_rounds + keep, feats)
            if len(later):
                self.min_propensity = min(self.min_propensity, float(later.propensities.min()))

    def _train(self, rounds: LoggedRounds) -> None:
        batch = [Feedback(c, a, int(k), float(p), float(r)) for c, a, k, p, r in zip(
            rounds.contexts, rounds.actions, rounds.chosen, rounds.propensities, rounds.rewards)]
        for cand in self.candidates:
            try:
                cand.policy.learn(batch)
            except BanditError as exc:
                raise ReplayError(f"{cand.name}: cannot learn from the training slice: {exc}") from exc

    def _features(self, rounds: LoggedRounds) -> tuple:
        """Drop rounds the reward model cannot featurize: ``(kept rounds, their rows,
        their indices in rounds)``."""
        feats, keep = [], []
        for j, (ctx, actions) in enumerate(zip(rounds.contexts, rounds.actions)):
            try:
                feats.append(self.model.rows(ctx, actions))
                keep.append(j)
            except BanditError as exc:
                self.dropped[rounds.where[j]] = f"unusable context or actions: {exc}"
        index = np.asarray(keep, dtype=np.int64)
        return (rounds if len(keep) == len(rounds) else rounds.take(keep)), feats, index

    def score(self, seed, sink) -> None:
        """Pass 2: target pmfs, q̂ and replay on the evaluation slice, into ``sink``."""
        self.replays = {c.name: RejectionReplay(c.policy, self.min_propensity, seed)
                        for c in self.candidates if c.learn == "replay"}
        for offset, rounds in self.chunks("score"):
            cut = max(0, min(len(rounds), self.train_rounds - offset))
            later = rounds.slice(cut, len(rounds))
            if self._columnar(later):
                self._score_columns(later, offset + cut - self.train_rounds, sink)
                continue
            later, feats, index = self._features(later)
            if not len(later):
                continue
            pmfs, keep = self._target_pmfs(later)
            if len(keep) < len(later):
                later, feats, index = later.take(keep), [feats[j] for j in keep], index[keep]
                pmfs = {name: pmf[keep] for name, pmf in pmfs.items()}
            positions = offset + cut - self.train_rounds + index  # folds follow log order
            q_hat = self.model.predict(later, positions, later.width, feats)
            for replay in self.replays.values():
                replay.feed(later)
            sink.add(later, q_hat, pmfs)
        self.n_eval = sink.n

    def _columnar(self, rounds: LoggedRounds) -> bool:
        """Whether a chunk is scored in token space: token columns, few action sets, and
        every frozen candidate an ε-greedy or LinUCB policy whose featurizer reads them."""
        cols = rounds.columns
        if cols is None or not len(cols):
            return False
        sets = np.unique(cols.set_index).tolist()
        if len(sets) > max(8, len(cols) // 32) or not self.model.tokens.usable(cols, sets):
            return False
        return all(c.name in self.tokens and self.tokens[c.name].usable(cols, sets)
                   for c in self.frozen)

    def _score_columns(self, rounds: LoggedRounds, start: int, sink) -> None:
        """Pass 2 on a chunk in token space (``start``: its first round's place in the
        evaluation slice)."""
        cols, n, width = rounds.columns, len(rounds), rounds.width
        pmfs = {c.name: np.zeros((n, width)) for c in self.frozen}
        for s, rows in cols.groups():
            pairs = cols.action_sets[s]
            for cand in self.frozen:
                pmfs[cand.name][rows, :len(pairs)] = policy_pmf(
                    cand.policy, self.tokens[cand.name], cols, rows, pairs)
        q_hat = self.model.predict_columns(rounds, start + np.arange(n), width)
        for replay in self.replays.values():
            replay.feed(rounds)
        sink.add(rounds, q_hat, pmfs)

    def _target_pmfs(self, rounds: LoggedRounds) -> tuple:
        """Each frozen candidate's pmf per round, (n, width); rounds any candidate rejects
        are dropped for all."""
        pmfs = {c.name: np.zeros((len(rounds), rounds.width)) for c in self.frozen}
        keep = []
        for j, (ctx, actions) in enumerate(zip(rounds.contexts, rounds.actions)):
            try:
                for cand in self.frozen:
                    pmf = cand.policy.decide(ctx, actions).pmf
                    pmfs[cand.name][j, :pmf.size] = pmf
                keep.append(j)
            except BanditError as exc:
                self.dropped[rounds.where[j]] = f"{cand.name} cannot decide: {exc}"
        return pmfs, keep


