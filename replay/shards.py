"""One evaluation spread over the files of a Parquet log: worker processes or a Ray cluster.

Each file of a log (a day's partition) is a shard. Both passes of
:func:`replay.evaluate.evaluate` run shard by shard, in any order and on any machine,
and add up to the whole log's:

1. each shard's reward-model statistics are kept per *local* fold (its j-th round in
   fold j mod F); the shard's first round is round ``start`` of the log, known once
   every shard has counted its rounds, so local fold l is global fold (start + l) mod F;
2. the model is fitted once from the sums, and each shard is scored with the fold
   models rotated the same way; its :class:`~replay.sinks.SumSink` merges into the
   log's, shard after shard in log order.

The estimates equal the single-process run's to rounding (summation order only).
Learning candidates (``learn = "replay"``), a training slice, ``limit`` and the
bootstrap read the log in order, so they run in a single process.

``map_fn(fn, items, progress=...)`` is any order-preserving map: :func:`process_map`
(worker processes on this machine), :func:`replay.ray_map.ray_map`, or
:func:`replay.ray_map.local_map`.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from dataclasses import dataclass

import numpy as np

from .errors import ReplayError
from .evaluate import DEFAULT_ESTIMATORS, Evaluation, _Run
from .estimators import ESTIMATORS
from .parquet_log import ParquetLog
from .readers import ReadReport
from .reward_model import CrossFitRidge
from .sinks import SumSink


@dataclass
class _Job:
    path: str
    candidates: list
    reward_featurizer: object
    folds: int
    start: int = 0
    thetas: object = None


def evaluate_shards(path: str, candidates: list, map_fn, *, estimators=DEFAULT_ESTIMATORS,
                    level=0.95, folds=5, reward_featurizer=None, progress=None) -> Evaluation:
    """:func:`replay.evaluate.evaluate` of a Parquet log, its files spread by ``map_fn``;
    ``progress(stage, done_files)`` after each file."""
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise ReplayError(f"estimators: unknown {', '.join(unknown) or '(none given)'} "
                          f"(allowed: {', '.join(ESTIMATORS)})")
    learning = [c.name for c in candidates if c.learn != "frozen"]
    if learning:
        raise ReplayError(f"{', '.join(learning)}: learn = \"replay\" reads the log in order; "
                          "evaluate it without spreading the log")
    files = ParquetLog(path).files()
    progress = progress or (lambda stage, done: None)
    jobs = [_Job(f, candidates, reward_featurizer, folds) for f in files]
    fitted = map_fn(_fit, jobs, progress=lambda done, total: progress("fit", done))
    model = CrossFitRidge(reward_featurizer, folds)
    start = 0
    for job, (rounds, A, b, counts, _, _) in zip(jobs, fitted):
        order = (start + np.arange(folds)) % folds
        model.A_[order] += A
        model.b_[order] += b
        model.counts_[order] += counts
        job.start, start = start, start + rounds
    if start == 0:
        raise ReplayError(f"{path}: no rewarded rounds to evaluate")
    thetas = model.fit()
    for job in jobs:
        job.thetas = thetas[(job.start + np.arange(folds)) % folds]
    scored = map_fn(_score, jobs, progress=lambda done, total: progress("score", done))
    sink, report, dropped = SumSink([c.name for c in candidates]), ReadReport(path), {}
    for (_, _, _, _, fit_report, fit_dropped), (part, part_dropped) in zip(fitted, scored):
        sink.merge(part)
        _add_report(report, fit_report)
        dropped.update(fit_dropped)
        dropped.update(part_dropped)
    if sink.n == 0:
        raise ReplayError(f"{path}: no rewarded rounds to evaluate\n" + report.summary())
    rows = sink.rows(estimators, "normal", level, 0, 0)
    return Evaluation(rows, report, sink.n, 0, sorted(dropped.items()), sink.overlap())


def _run(job: _Job) -> _Run:
    source = ParquetLog(job.path)
    model = CrossFitRidge(job.reward_featurizer, job.folds)
    return _Run(source, job.candidates, model, source.chunk_rounds, None, lambda *_: None)


def _fit(job: _Job) -> tuple:
    """Pass 1 on one file: ``(rounds, A, b, counts per local fold, report, dropped)``."""
    run = _run(job)
    run.accumulate()
    run.model.settle()
    m = run.model
    return run.source.report.rounds, m.A_, m.b_, m.counts_, _located(run.source), _named(run)


def _score(job: _Job) -> tuple:
    """Pass 2 on one file: ``(its SumSink, dropped)``."""
    run = _run(job)
    run.model.theta_ = job.thetas
    sink = SumSink([c.name for c in run.frozen])
    run.score(0, sink)
    return sink, _named(run)


def _located(source) -> ReadReport:
    """The file's report, its problems located by file name."""
    report, name = source.report, os.path.basename(os.path.dirname(source.name)) or source.name
    report.problems = [(f"{name}/{os.path.basename(source.name)} {where}", msg)
                       for where, msg in report.problems]
    return report


def _named(run) -> dict:
    name = os.path.basename(os.path.dirname(run.source.name))
    return {f"{name} {where}": why for where, why in run.dropped.items()}


def _add_report(total: ReadReport, part: ReadReport) -> None:
    for field in ("records", "rounds", "unrewarded", "skipped", "unsupported", "malformed"):
        setattr(total, field, getattr(total, field) + getattr(part, field))
    total.problems += part.problems[:max(0, 100 - len(total.problems))]
    for why, n in part.reasons.items():
        total.reasons[why] = total.reasons.get(why, 0) + n


def process_map(workers: int):
    """An order-preserving map over ``workers`` processes of this machine (spawned: no
    state of this process leaks in)."""
    def run(fn, items, progress=None) -> list:
        items = list(items)
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                    initializer=_worker_init) as pool:
            futures = [pool.submit(fn, item) for item in items]
            for done, _ in enumerate(concurrent.futures.as_completed(futures), 1):
                if progress is not None:
                    progress(done, len(items))
            return [f.result() for f in futures]
    return run


_LIMITS = []


def _worker_init() -> None:
    """One BLAS thread per worker: the workers already use every core."""
    from threadpoolctl import threadpool_limits

    _LIMITS.append(threadpool_limits(limits=1, user_api="blas"))
