#!/usr/bin/env python3
"""Soak: a steady rank + reward load at half the peak rate, 4 workers, 60 s.

The production topology (gunicorn workers and a learner process on a redis-server
with an append-only file, ``--appendfsync everysec`` unless told ``always``). First
the peak rank rate is measured as bench_service measures it (wrk, 8 connections,
the same 20-candidate bodies) on this same setup, unless ``--rate`` gives the rate
directly. Then requests are sent open-loop at half that rate: request i is due at
i / rate, whatever happened to earlier ones, and its latency counts from when it was
due (a stalled server cannot hide queueing). Most are ranks; ``--reward-share``
rewards per rank (default 0.3, a click-through loop) reward earlier decisions.
Requests are prebuilt bytes sent by one thread on non-blocking sockets
(:mod:`service.testing.openloop`), so the generator leaves the (shared) CPU to the service. They
reach gunicorn on its unix socket, as from nginx on the API host, or with
``--front tcp`` on the loopback (each TCP connection costs both ends ~0.2 ms of CPU
on the 2-core VM: a tenth of a core at this rate). Worker memory is sampled every
second.

Last line: JSON with ``requests``, ``errors``, ``p99_ms`` (rank, from when due),
``rss_mb_max`` (the largest worker) and the rest of the table, including what
explains a tail: the worst one-second p99 and the number of seconds over 20 ms, the
share of CPU the hypervisor stole, and Redis's forks (AOF rewrites) and delayed fsyncs. Targets: errors 0,
p99_ms <= 20, rss_mb_max <= 200.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time

from service.store import connect, keys
from service.testing import openloop
from service.testing.hostcpu import cpu_times, steal_share
from service.testing.load import drive
from service.testing.procs import Gunicorn, production
from service.testing.workload import workload

CONFIG = """
[service]
allow_anonymous = true
publish_events = 500
publish_seconds = 2.0
[loops.recs]
policy = { type = "linucb", alpha = 1.0 }
reward_wait = "10m"
"""
EVENT_ID = re.compile(rb'"event_id":"([^"]+)"')


class Recorder:
    def __init__(self):
        self.rank_ms, self.service_ms, self.reward_ms = [], [], []
        self.rank_due = []  # when each rank in rank_ms was due (for per-second figures)
        self.errors, self.late = {}, 0

    def error(self, what):
        self.errors[what] = self.errors.get(what, 0) + 1


def http_request(method: str, path: str, body: dict | None = None) -> bytes:
    """A complete HTTP/1.1 request, built once: the load generator only sends bytes."""
    data = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
    return head.encode() + data


def steady(address, ranks, rate, seconds, reward_share, rec: Recorder) -> None:
    """Open-loop load of ``rate`` requests/s (:mod:`service.testing.openloop`); a slot is a rank, or
    (``reward_share`` of them) the reward of an earlier rank."""
    rng, to_reward = random.Random(0), []

    def next_request(i):
        if to_reward and rng.random() < reward_share / (1 + reward_share):
            event = to_reward.pop()
            return http_request("POST", f"/v1/loops/recs/events/{event}/reward",
                                {"value": float(rng.random() < 0.3)}), "reward"
        return rng.choice(ranks), "rank"

    def on_done(kind, due, sent, done, status, body):
        if status != 200:
            rec.error(f"{kind} {status or type(body).__name__}")
            return
        rec.late += sent - due > 0.001
        if kind == "rank":
            rec.rank_ms.append((done - due) * 1e3)
            rec.rank_due.append(due)
            rec.service_ms.append((done - sent) * 1e3)
            to_reward.append(EVENT_ID.search(body).group(1).decode())
        else:
            rec.reward_ms.append((done - due) * 1e3)

    openloop.run(address, rate, int(rate * seconds), next_request, on_done)


def sample_rss(api: Gunicorn, stop: threading.Event, out: list) -> None:
    while not stop.wait(1.0):
        out.append(api.worker_rss_mb())


def per_second_p99(due, ms) -> list:
    """The rank p99 of each second of the run (by due time), in order."""
    if not due:
        return []
    start, buckets = min(due), {}
    for t, v in zip(due, ms):
        buckets.setdefault(int(t - start), []).append(v)
    return [pct(buckets[s], 0.99) for s in sorted(buckets)]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, help="requests per second (default: half the peak)")
    parser.add_argument("--reward-share", type=float, default=0.3,
                        help="rewards sent per rank (default 0.3: a click-through loop)")
    parser.add_argument("--front", choices=("unix", "tcp"), default="unix",
                        help="how requests reach gunicorn: its unix socket, as from a proxy on "
                             "the host such as nginx (default), or TCP on the loopback")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads per worker: gthread workers, as cbserve api --threads (0: sync)")
    parser.add_argument("--appendfsync", choices=("always", "everysec"), default="everysec",
                        help="Redis's fsync policy (default everysec: a killed Redis loses "
                             "nothing acknowledged; always: nor does a power cut, at an fsync "
                             "per write)")
    args = parser.parse_args(argv)
    pairs = workload(300, seed=13)
    bodies = [{"context": c, "actions": a} for c, a, _, _ in pairs]
    rec, rss, stop = Recorder(), [], threading.Event()
    with production(CONFIG, args.workers, appendfsync=args.appendfsync, threads=args.threads) as deployed:
        api, tmp = deployed.api, deployed.tmp
        bodies_path = os.path.join(tmp, "bodies.jsonl")
        with open(bodies_path, "w") as fh:
            fh.writelines(json.dumps(b) + "\n" for b in bodies)
        peak = None
        if args.rate is None:
            drive(api.url, bodies_path, 2, 8, None, tmp)  # warm-up
            probe = drive(api.url, bodies_path, 5, 8, None, tmp)
            peak = probe["requests"] / probe["seconds"]
        rate = args.rate or peak / 2
        print(f"peak rank rate {peak:.0f}/s; soaking at {rate:.0f}/s" if peak else
              f"soaking at {rate:.0f}/s (--rate)")
        sampler = threading.Thread(target=sample_rss, args=(api, stop, rss), daemon=True)
        sampler.start()
        began, cpu_before = time.monotonic(), cpu_times()
        ranks = [http_request("POST", "/v1/loops/recs/rank", b) for b in bodies]
        front = api.unix_socket if args.front == "unix" else ("127.0.0.1", api.port)
        steady(front, ranks, rate, args.seconds, args.reward_share, rec)
        elapsed, cpu_after = time.monotonic() - began, cpu_times()
        stop.set()
        sampler.join()
        client = connect(deployed.redis_url)
        learned = int(client.hget(keys.stats("recs"), "learned") or 0)
        version = int(client.hget(keys.model("recs"), "version") or 0)
        persistence, stats = client.info("persistence"), client.info("stats")
    seconds_p99 = per_second_p99(rec.rank_due, rec.rank_ms)
    per_worker = {}
    for sample in rss:
        for pid, mb in sample.items():
            per_worker[pid] = max(per_worker.get(pid, 0.0), mb)
    figures = {
        "requests": len(rec.rank_ms) + len(rec.reward_ms) + sum(rec.errors.values()),
        "errors": sum(rec.errors.values()), "p99_ms": round(pct(rec.rank_ms, 0.99), 2),
        "rss_mb_max": round(max(per_worker.values()), 1) if per_worker else None,
        "rate": round(rate, 1), "peak_rps": round(peak, 1) if peak else None,
        "achieved_rps": round((len(rec.rank_ms) + len(rec.reward_ms)) / elapsed, 1),
        "p50_ms": round(pct(rec.rank_ms, 0.5), 2), "p999_ms": round(pct(rec.rank_ms, 0.999), 2),
        "service_p99_ms": round(pct(rec.service_ms, 0.99), 2),
        "reward_p99_ms": round(pct(rec.reward_ms, 0.99), 2), "late_sends": rec.late,
        "reward_share": args.reward_share,
        "rss_mb_by_worker": {str(p): round(v, 1) for p, v in sorted(per_worker.items())},
        "rss_mb_first": round(max(rss[0].values()), 1) if rss else None,
        "learned": learned, "model_version": version, "error_kinds": rec.errors,
        "seconds": round(elapsed, 1), "workers": args.workers, "threads": args.threads,
        "appendfsync": args.appendfsync,
        "front": args.front,
        # what explains a tail: the worst seconds, the host's steal, Redis's forks (AOF
        # rewrites) and the fsyncs it had to delay because the disk was busy
        "worst_second_p99_ms": round(max(seconds_p99), 2) if seconds_p99 else None,
        "seconds_p99_over_20ms": sum(v > 20 for v in seconds_p99),
        "steal_share": steal_share(cpu_before, cpu_after),
        "redis_forks": stats.get("total_forks"),
        "redis_aof_delayed_fsync": persistence.get("aof_delayed_fsync")}
    _table(figures)
    print(json.dumps(figures))
    ok = figures["errors"] == 0 and figures["p99_ms"] <= 20 and (figures["rss_mb_max"] or 0) <= 200
    return 0 if ok else 1


def _table(f):
    print(f"\n{f['workers']} gunicorn workers + learner ({f['front']} front), {f['seconds']} s at "
          f"{f['rate']} requests/s "
          f"(peak rank rate {f['peak_rps']}), {f['reward_share']:g} rewards per rank")
    rows = [("requests (rank + reward)", f["requests"], ""), ("errors", f["errors"], "target 0"),
            ("requests/s achieved", f["achieved_rps"], ""),
            ("rank p50 ms (from due time)", f["p50_ms"], ""),
            ("rank p99 ms (from due time)", f["p99_ms"], "target <= 20"),
            ("rank p99.9 ms (from due time)", f["p999_ms"], ""),
            ("rank p99 ms (from send)", f["service_p99_ms"], ""),
            ("reward p99 ms (from due time)", f["reward_p99_ms"], ""),
            ("worker RSS max MB (first second)", f"{f['rss_mb_max']} ({f['rss_mb_first']})", "target <= 200"),
            ("events learned / model version", f"{f['learned']} / {f['model_version']}", ""),
            ("seconds with a p99 over 20 ms (worst)",
             f"{f['seconds_p99_over_20ms']} ({f['worst_second_p99_ms']} ms)", ""),
            ("host CPU stolen by the hypervisor", f["steal_share"], ""),
            ("Redis forks (AOF rewrites) / delayed fsyncs",
             f"{f['redis_forks']} / {f['redis_aof_delayed_fsync']}", "")]
    for label, value, note in rows:
        print(f"{label:<36}{value!s:>18}  {note}")


if __name__ == "__main__":
    sys.exit(main())
