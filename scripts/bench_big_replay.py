"""The big-log part of scripts/bench_replay.py: a Parquet log bigger than memory's comfort.

1. writes ``rows`` decisions (scripts/big_log.py: 10 actions, 9 context features) as a
   directory partitioned by day, and a frozen LinUCB snapshot (default featurizer)
   trained on the first 5,000 rounds;
2. evaluates the snapshot (IPS, SNIPS, DR with normal intervals) on the whole log from
   a fresh process, its files spread over ``workers`` worker processes (replay_eval's
   ``--workers``; the figures ``big_events``, ``big_events_per_s``, ``big_rss_mb``: the
   peak of the RSS of the driver and its workers together, sampled every 50 ms), then in
   one process alone (``big_one_process_*``);
3. side by side, the same evaluation the way a log held in memory is evaluated (rounds
   as Python objects, each scored on its own, every array kept, the estimators run on
   them) on the first ``small`` rounds, and the streaming path on those same rounds:
   ``big_max_abs_diff`` over value, low and high of every row, and the in-memory path's
   events/s as the baseline.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time

from big_log import write_big_log

ESTIMATORS = ("ips", "snips", "dr")


def snapshot(path: str, out: str, rounds: int = 5_000) -> None:
    from bandits import Feedback, make_policy
    from replay import ParquetLog

    chunk = next(ParquetLog(path).chunks(rounds))
    policy = make_policy({"type": "linucb", "alpha": 0.5})
    policy.learn([Feedback(c, a, int(k), float(p), float(r)) for c, a, k, p, r in zip(
        chunk.contexts, chunk.actions, chunk.chosen, chunk.propensities, chunk.rewards)])
    with open(out, "wb") as fh:
        fh.write(policy.to_bytes())


def candidates(snap: str):
    from replay import candidate_from_mapping

    return [candidate_from_mapping({"snapshot": os.path.basename(snap), "name": "linucb"},
                                   os.path.join(os.path.dirname(snap), "c.toml"))]


def _stream(path, snap, limit, workers, queue) -> None:
    """Child process: the streaming evaluation; sends (seconds, rounds, rows, RSS MB)."""
    from replay import ParquetLog, evaluate
    from replay.shards import evaluate_shards, process_map
    from service.threads import one_blas_thread

    one_blas_thread()
    sampler = RssSampler()
    began = time.perf_counter()
    if workers:
        result = evaluate_shards(path, candidates(snap), process_map(workers), estimators=ESTIMATORS)
    else:
        result = evaluate(ParquetLog(path), candidates(snap), estimators=ESTIMATORS, limit=limit)
    seconds = time.perf_counter() - began
    queue.put((seconds, result.rounds, result.rows, sampler.stop()))


class RssSampler(threading.Thread):
    """The peak of the summed RSS of this process and its descendants, sampled from
    /proc every 50 ms (a process's own peak, ru_maxrss, also counts what its parent
    held when it was forked)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self._done = 0.0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak, tree_rss_mb(os.getpid()))


def tree_rss_mb(root: int) -> float:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            pass
    return total / 1e6


def stream_in_child(path: str, snap: str, limit=None, workers: int = 0) -> tuple:
    """``(seconds, rounds, rows, peak RSS MB)`` of the streaming evaluation, run from a
    fresh process (its RSS is the evaluation's, not this script's)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_stream, args=(path, snap, limit, workers, queue))
    child.start()
    out = queue.get()
    child.join()
    return out


class InMemory:
    """The first ``n`` rounds held in memory as Python objects, evaluated round by round."""

    def __new__(cls, path: str, n: int):
        from replay import LogSource, ParquetLog
        from replay.logs import concat

        rounds = concat([c for c in ParquetLog(path).chunks(10_000, limit=n)])

        class Source(LogSource):
            def chunks(self, size=1_000, limit=None):
                for start in range(0, len(rounds), size):
                    yield rounds.slice(start, min(len(rounds), start + size))

        source = Source(f"{path} (first {n} rounds, in memory)")
        source.chunk_rounds = 1_000
        return source


def run(tmp: str, rows: int, small: int, days: int, workers: int = 2) -> dict:
    from replay import evaluate

    path, snap = os.path.join(tmp, "big"), os.path.join(tmp, "linucb.bin")
    began = time.perf_counter()
    size = write_big_log(path, rows, days=days)
    written = time.perf_counter() - began
    snapshot(path, snap)
    seconds, rounds, spread, rss = stream_in_child(path, snap, workers=workers)
    one_s, one_rounds, alone, one_rss = stream_in_child(path, snap)
    assert one_rounds == rounds and [(r["policy"], r["estimator"]) for r in spread] == \
        [(r["policy"], r["estimator"]) for r in alone]
    spread_diff = max(abs(a[f] - b[f]) for a, b in zip(spread, alone) for f in ("value", "low", "high"))
    # side by side on the first `small` rounds: in memory, round by round; then streaming
    source = InMemory(path, small)
    began = time.perf_counter()
    kept = evaluate(source, candidates(snap), estimators=ESTIMATORS, in_memory=True)
    baseline_s = time.perf_counter() - began
    small_s, small_rounds, streamed, _ = stream_in_child(path, snap, limit=small)
    diff = max(abs(a[f] - b[f]) for a, b in zip(kept.rows, streamed)
               for f in ("value", "low", "high"))
    assert [(r["policy"], r["estimator"]) for r in kept.rows] == \
        [(r["policy"], r["estimator"]) for r in streamed] and small_rounds == kept.rounds
    return {"big_events": rounds, "big_seconds": round(seconds, 2), "big_workers": workers,
            "big_events_per_s": round(rounds / seconds, 1), "big_rss_mb": round(rss, 1),
            "big_one_process_events_per_s": round(rounds / one_s, 1),
            "big_one_process_rss_mb": round(one_rss, 1),
            "big_workers_vs_one_process_max_abs_diff": float(spread_diff),
            "big_bytes": size, "big_write_seconds": round(written, 1),
            "big_small_events": small, "big_small_events_per_s": round(small / small_s, 1),
            "big_in_memory_events_per_s": round(small / baseline_s, 1),
            "big_speedup": round((small / small_s) / (small / baseline_s), 2),
            "big_max_abs_diff": float(diff)}


def table(f: dict) -> str:
    return "\n".join([
        f"Parquet log: {f['big_events']:,} events, {f['big_bytes'] / 1e6:,.0f} MB on disk "
        f"(written in {f['big_write_seconds']} s)",
        f"{'path':<44}{'events':>12}{'events/s':>12}{'peak RSS MB':>13}",
        f"{'streaming, ' + str(f['big_workers']) + ' worker processes (whole log)':<44}"
        f"{f['big_events']:>12,}{f['big_events_per_s']:>12,.0f}{f['big_rss_mb']:>13,.0f}",
        f"{'streaming, one process (whole log)':<44}{f['big_events']:>12,}"
        f"{f['big_one_process_events_per_s']:>12,.0f}{f['big_one_process_rss_mb']:>13,.0f}",
        f"{'streaming, one process (first rounds)':<44}{f['big_small_events']:>12,}"
        f"{f['big_small_events_per_s']:>12,.0f}{'':>13}",
        f"{'in memory, round by round (same rounds)':<44}{f['big_small_events']:>12,}"
        f"{f['big_in_memory_events_per_s']:>12,.0f}{'':>13}",
        f"streaming ÷ in memory: {f['big_speedup']}×; largest difference of any value or "
        f"bound: {f['big_max_abs_diff']:.1e} (workers ÷ one process: "
        f"{f['big_workers_vs_one_process_max_abs_diff']:.1e})"])
