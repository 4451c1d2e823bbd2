"""Offline evaluation of candidate policies on a loop's logged decisions.

Usage:
  python scripts/replay_eval.py (--log PATH_OR_REDIS_URL | --config FILE) [--loop L] --policy FILE.toml
         [--policy ...] [--estimators ips,snips,dm,dr,sndr] [--ci normal|bootstrap]
         [--level 0.95] [--train-fraction F] [--folds 5] [--limit N]
         [--workers N | --ray [ADDRESS]] [--json result.json] [--plot result.png]

``--log`` is a DSJSON file (``cbserve export``'s, or VW's; ``.gz`` read as gzip), a
Parquet log (a ``.parquet`` file, or the directory ``cbserve export --format parquet``
writes, one file per day), or the Redis URL the service logs to (then ``--loop`` is
required and candidates may name a published ``model_version``). A Parquet log's files
can be spread over ``--workers N`` processes of this machine or a Ray cluster
(``--ray [ADDRESS]``, ``pip install 'cbserve[ray]'``), with the single-process run's
estimates (:mod:`replay.shards`). ``--config`` (instead of ``--log``) reads the loop from the Redis of ``cbserve serve --config FILE``: the running
service's, ``$REDIS_URL``, or the data_dir's embedded Redis started for the run. Writes the JSON result and a
PNG of value ± CI per policy and estimator, then prints a table (policy, estimator,
value, CI, ESS; ``n/a`` where the sample is too small for an interval) that ends with
the verdict and the next step (:mod:`replay.verdict`). A progress bar is shown on a
terminal. Exit status 2 on bad arguments.

A multi-slot log (its first event in VW's CCB layout) gets the multi-slot report of
:mod:`replay.slate_eval` instead: per-slot rows (``--estimators``, default ips,snips,dr)
and slate rows (slate IPS, RIPS; IIPS and the pseudo-inverse with ``--logging-policy
FILE.toml``, the policy that wrote the log).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from replay import ReplayError, evaluate, load_candidate
from replay.estimators import CI_METHODS, ESTIMATORS
from replay.report import format_table, plot, write_json
from replay.slate_eval import (SlateEvaluation, evaluate_slates, format_slate_table,
                               is_multi_slot, slate_plot_rows)
from service.config import load_config
from service.embedded_redis import config_redis
from service.errors import ServiceError
from service.export import open_log


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--log", help="DSJSON (.gz) or .parquet file, a directory of Parquet "
                                     "files (cbserve export --format parquet), or redis:// URL")
    where.add_argument("--config", help="the service's configuration: read --loop from its Redis")
    p.add_argument("--loop", help="loop name (required with a Redis URL or --config)")
    p.add_argument("--policy", action="append", default=[], metavar="FILE.toml",
                   help="candidate policy file (repeatable)")
    p.add_argument("--estimators", default=None,
                   help="default ips,snips,dm,dr,sndr (multi-slot logs: per slot, ips,snips,dr)")
    p.add_argument("--logging-policy", metavar="FILE.toml", default=None,
                   help="multi-slot logs: the policy that wrote the log (enables IIPS and PI)")
    p.add_argument("--ci", choices=CI_METHODS, default="normal")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--train-fraction", type=float, default=None,
                   help="train the candidates on this earlier share of the log, evaluate on the rest")
    p.add_argument("--folds", type=int, default=5, help="cross-fitting folds of the reward model")
    p.add_argument("--limit", type=int, default=None, help="read at most this many rewarded rounds")
    spread = p.add_mutually_exclusive_group()
    spread.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="Parquet logs: spread the log's files over a Ray cluster "
                             "(host:port, ray://host:10001, auto; no value: a Ray on this machine)")
    spread.add_argument("--workers", type=int, default=None, metavar="N",
                        help="Parquet logs: spread the log's files over N processes of this machine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="replay-result.json", help="where to write the JSON result")
    p.add_argument("--plot", default="replay-result.png", help="where to write the PNG plot")
    return p, p.parse_args(argv)


def progress_bar():
    """A tqdm bar per stage, on a terminal only (no output when piped or in CI)."""
    from tqdm import tqdm

    bars = {}

    def update(stage, rounds):
        bar = bars.get(stage)
        if bar is None:
            for old in bars.values():
                old.close()
            bar = bars[stage] = tqdm(desc=stage, unit=" rounds", disable=None, file=sys.stderr)
        bar.update(rounds - bar.n)

    update.close = lambda: [b.close() for b in bars.values()]
    return update


def run(args, estimators, log: str) -> tuple:
    """``(source, evaluation)`` of the candidates on ``log`` (a path or Redis URL)."""
    source = open_log(log, args.loop)
    candidates = [load_candidate(path, source.model_loader) for path in args.policy]
    if is_multi_slot(source):
        logger = args.logging_policy and load_candidate(args.logging_policy, source.model_loader)
        return source, evaluate_slates(
            source, candidates, logging_policy=logger,
            estimators=estimators if args.estimators else ("ips", "snips", "dr"), ci=args.ci,
            level=args.level, n_boot=args.n_boot, folds=args.folds,
            train_fraction=args.train_fraction, limit=args.limit, seed=args.seed)
    if args.ray or args.workers is not None:
        result = spread(args, source, candidates, estimators)
        source.report = result.report
        return source, result
    bar = progress_bar()
    try:
        result = evaluate(source, candidates, estimators=estimators, ci=args.ci,
                          level=args.level, n_boot=args.n_boot, folds=args.folds,
                          train_fraction=args.train_fraction, limit=args.limit,
                          seed=args.seed, progress=bar)
    finally:
        bar.close()
    return source, result


def spread(args, source, candidates, estimators):
    """The evaluation with the log's files spread over processes or a Ray cluster."""
    from replay import ParquetLog
    from replay.ray_map import connected, ray_map
    from replay.shards import evaluate_shards, process_map

    option = "--ray" if args.ray else "--workers"
    if not isinstance(source, ParquetLog):
        raise ReplayError(f"{option}: spreads a Parquet log (a .parquet file or a directory "
                          f"of them, cbserve export --format parquet), not {source.name}")
    for name, given in (("--train-fraction", args.train_fraction), ("--limit", args.limit)):
        if given is not None:
            raise ReplayError(f"{option}: {name} reads the log in order; leave out one of them")
    if args.ci != "normal":
        raise ReplayError(f"{option}: --ci bootstrap resamples every round in one process")
    if args.workers is not None and args.workers < 1:
        raise ReplayError(f"--workers: must be at least 1, got {args.workers}")
    options = dict(estimators=estimators, level=args.level, folds=args.folds)
    if args.workers:
        return evaluate_shards(source.path, candidates, process_map(args.workers), **options)
    with connected(args.ray):
        return evaluate_shards(source.path, candidates, ray_map, **options)


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    given = args.estimators or "ips,snips,dm,dr,sndr"
    estimators = tuple(e.strip() for e in given.split(",") if e.strip())
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        parser.error(f"--estimators: unknown {', '.join(unknown)} (allowed: {', '.join(ESTIMATORS)})")
    if not 0.0 < args.level < 1.0:
        parser.error("--level: must be in (0, 1)")
    if args.config and not args.loop:
        parser.error("--loop: required with --config (the loop whose log to read)")
    try:
        with contextlib.ExitStack() as stack:
            log = args.log or stack.enter_context(config_redis(load_config(args.config), "replay_eval"))
            source, result = run(args, estimators, log)
    except (ReplayError, ServiceError) as exc:
        parser.error(str(exc))
    print(source.report.summary())
    if result.train_rounds:
        print(f"candidates trained on the first {result.train_rounds} rounds")
    if result.dropped:
        print(f"{len(result.dropped)} rounds dropped (first: {result.dropped[0][0]}: {result.dropped[0][1]})")
    print(f"evaluated on {result.rounds} rounds")
    write_json(result.to_dict(), args.json)
    name = os.path.basename(args.log) if args.log else args.loop
    slates = isinstance(result, SlateEvaluation)
    plot(slate_plot_rows(result) if slates else result.rows, args.plot,
         title=f"{name}: {'slate ' if slates else ''}value ± {args.level:.0%} CI")
    print(f"wrote {args.json} and {args.plot}")
    print(format_slate_table(result) if slates else format_table(result.rows, result.verdict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
