"""Estimator and reader speed: cbserve's replay beside bare numpy one-liners.

1,000,000 synthetic logged rounds with 10 actions (a Dirichlet logger with a 10%
uniform floor, a Dirichlet target, Bernoulli rewards, a reward model q̂). Times
``ips``, ``snips``, ``dm`` and ``dr`` from :mod:`replay.estimators` (validation,
95% normal interval and ESS included) and, in the same run, the same three formulas
IPS, SNIPS and DR as bare numpy one-liners (value only). Then writes 200,000 decision
events in the service's DSJSON (10 actions with 2 features each, a context of 9
features; about 990 bytes a line) and reads them with :class:`replay.readers.DSJSONLog`
into arrays and parsed contexts, beside decoding each line with ``orjson.loads`` and
nothing else (the floor of any reader that hands out decoded contexts). Best of
``--repeats`` for every timing.

Then a big log (``--big`` rows, default 10,000,000; 0 skips it) in the Parquet layout,
partitioned by day, evaluated by streaming with a frozen LinUCB snapshot, and a smaller
slice of it the in-memory way side by side (scripts/bench_big_replay.py): ``big_events``,
``big_rss_mb``, ``big_events_per_s``, ``big_max_abs_diff``.

Usage: python scripts/bench_replay.py [--rounds N] [--events N] [--repeats R] [--big N]
       [--big-small N] [--big-days D] [--big-workers W]
The last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from bandits import dsjson
from replay.estimators import dm, dr, ips, snips
from replay.readers import DSJSONLog


def synthetic(n, k, seed=0, logging_pmf=False):
    """Logged rounds as the estimators take them (with the logger's pmf on request)."""
    rng = np.random.default_rng(seed)
    mu = 0.9 * rng.dirichlet(np.ones(k), n) + 0.1 / k
    a = (mu.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    rows = np.arange(n)
    pi = rng.dirichlet(np.ones(k), n)
    q = rng.random((n, k))
    r = (rng.random(n) < q[rows, a]).astype(np.float64)
    out = dict(rewards=r, propensities=mu[rows, a], target_probs=pi[rows, a], q_hat=q,
               target_pmf=pi, actions=a)
    return {**out, "logging_pmf": mu} if logging_pmf else out


def best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_interleaved(fns: dict, repeats: int) -> dict:
    """Best time of each function, the functions taking turns (the VM's speed drifts)."""
    times = {name: [] for name in fns}
    for _ in range(repeats + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(ts[1:]) for name, ts in times.items()}


def bare(d):
    """The same formulas as bare numpy one-liners (no validation, no interval)."""
    r, p, t, q, pi, a = (d[k] for k in ("rewards", "propensities", "target_probs", "q_hat",
                                        "target_pmf", "actions"))
    rows = np.arange(r.size)
    return {"ips": lambda: np.mean(t / p * r),
            "snips": lambda: np.sum(t / p * r) / np.sum(t / p),
            "dr": lambda: np.mean(np.sum(pi * q, axis=1) + t / p * (r - q[rows, a]))}


def decode_only(path, chunk=1_000):
    """The floor of any reader that hands out decoded events: each line through
    ``orjson.loads`` and kept until its chunk of ``chunk`` is full, nothing else (the
    cyclic GC paused, as the reader pauses it)."""
    import gc

    import orjson

    n, kept = 0, []
    gc.disable()
    try:
        with open(path, "rb") as fh:
            for line in fh:
                kept.append(orjson.loads(line))
                if len(kept) == chunk:
                    n, kept = n + chunk, []
    finally:
        gc.enable()
    return n + len(kept)


def write_events(path, n, k, seed=0):
    rng = np.random.default_rng(seed)
    actions = [(f"item-{j}", {"item": {"kind": f"k{j % 3}", "quality": round(j / k, 3)}})
               for j in range(k)]
    pmf = np.full(k, 1.0 / k)
    with open(path, "wb") as fh:
        for i in range(n):
            x = rng.normal(size=8).round(4)
            ctx = {"user": {f"f{j}": float(v) for j, v in enumerate(x)},
                   "device": {"os": "ios" if x[0] > 0 else "android"}}
            chosen = int(rng.integers(k))
            order = [chosen] + [j for j in range(k) if j != chosen]
            event = dsjson.decision_event(loop="bench", event_id=f"ev-{i}", epoch_s=1.7e9 + i,
                                          context=ctx, actions=actions, order=order, pmf=pmf,
                                          policy="epsilon_greedy", version=1, deferred=False)
            fh.write(dsjson.dumps(dsjson.with_label(event, float(rng.random() < 0.3))) + b"\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=10)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--big", type=int, default=10_000_000, help="rows of the big log (0: none)")
    parser.add_argument("--big-small", type=int, default=200_000,
                        help="rounds evaluated in memory beside the streaming path")
    parser.add_argument("--big-days", type=int, default=10, help="days the big log spans")
    parser.add_argument("--big-workers", type=int, default=2,
                        help="worker processes the big log's files are spread over")
    args = parser.parse_args(argv)

    d = synthetic(args.rounds, args.actions)
    ours = {"ips": lambda: ips(**d), "snips": lambda: snips(**d), "dm": lambda: dm(**d),
            "dr": lambda: dr(**d)}
    timed = best_interleaved({**{f"ours_{k}": f for k, f in ours.items()},
                              **{f"bare_{k}": f for k, f in bare(d).items()}}, args.repeats)
    t_ours = {k: timed[f"ours_{k}"] for k in ours}
    t_bare = {k: timed[f"bare_{k}"] for k in bare(d)}
    for name in ("ips", "snips", "dr"):  # same values, or the comparison means nothing
        assert abs(ours[name]().value - float(bare(d)[name]())) < 1e-9

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.json")
        write_events(path, args.events, args.actions)
        size = os.path.getsize(path)
        source = DSJSONLog(path)

        def read():
            return sum(len(chunk) for chunk in source.chunks())

        assert read() == args.events == decode_only(path)
        t_reads = best_interleaved({"read": read, "floor": lambda: decode_only(path)},
                                   max(1, args.repeats // 2))
        t_read, t_floor = t_reads["read"], t_reads["floor"]

    baseline = sum(t_bare.values())
    mine = t_ours["ips"] + t_ours["snips"] + t_ours["dr"]
    print(f"{args.rounds:,} rounds, {args.actions} actions; best of {args.repeats}")
    print(f"{'estimator':<10}{'cbserve ms':>12}{'bare numpy ms':>15}{'ratio':>8}")
    for name in ("ips", "snips", "dm", "dr"):
        b = t_bare.get(name)
        print(f"{name:<10}{t_ours[name] * 1e3:>12.1f}"
              f"{(f'{b * 1e3:.1f}' if b else '-'):>15}{(f'{t_ours[name] / b:.2f}' if b else '-'):>8}")
    print(f"{'ips+snips+dr':<10}{mine * 1e3:>12.1f}{baseline * 1e3:>15.1f}{mine / baseline:>8.2f}")
    rate, floor = args.events / t_read, args.events / t_floor
    print(f"DSJSON read: {args.events:,} events ({size / args.events:.0f} bytes each) in "
          f"{t_read:.2f} s = {rate:,.0f} events/s")
    print(f"  beside it, orjson.loads of each line and nothing else: {floor:,.0f} events/s "
          f"(the reader runs at {rate / floor:.2f} of it)")
    figures = {"ips_s": round(t_ours["ips"], 5), "snips_s": round(t_ours["snips"], 5),
               "dm_s": round(t_ours["dm"], 5), "dr_s": round(t_ours["dr"], 5),
               "baseline_s": round(baseline, 5),
               **{f"bare_{k}_s": round(v, 5) for k, v in t_bare.items()},
               "ratio": round(mine / baseline, 3), "dsjson_events_per_s": round(rate, 1),
               "dsjson_bytes_per_event": round(size / args.events, 1),
               "decode_only_events_per_s": round(floor, 1),
               "dsjson_decode_share": round(rate / floor, 3)}
    if args.big:
        import bench_big_replay

        with tempfile.TemporaryDirectory() as tmp:
            big = bench_big_replay.run(tmp, args.big, min(args.big_small, args.big), args.big_days,
                                       args.big_workers)
        print(bench_big_replay.table(big))
        figures.update(big)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
