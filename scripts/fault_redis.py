#!/usr/bin/env python3
"""Kill Redis (SIGKILL) under rank + reward load, twice, and audit what was acknowledged.

The production topology on one machine: gunicorn (``--workers``) and a separate
learner process against a redis-server with ``appendonly yes`` and ``appendfsync
always``. Client threads rank (20 candidates, 32 context features) and reward each
decision at once; a reward answered 503 is resent until it is answered, and one in
ten accepted rewards is resent anyway (a client retry), which must be a no-op.

Redis is killed at 25% and 60% of ``--seconds`` and restarted from its files after
``--down`` seconds. Afterwards every decision a client got a 200 for is looked up
in the log (same action, same propensity), every accepted reward in the joined
stream (exactly once, same value), and the learner's count against the joins.

Last line: JSON with ``acknowledged``, ``lost``, ``double_counted_rewards``,
``recovered_s`` (the slowest restart: from relaunching redis-server to the next 200
rank) and the other figures of the table. Exit 1 if anything was lost or counted twice.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter

from service.sim.traffic import JsonClient, check_decisions
from service.store import connect, joined_rewards, keys, stream_entries
from service.testing.procs import production
from service.testing.workload import workload

CONFIG = """
[service]
allow_anonymous = true
publish_events = 200
publish_seconds = 1.0
[loops.recs]
policy = { type = "linucb", alpha = 1.0 }
reward_wait = "10m"
"""


class Audit:
    """What the clients were told, shared by the load threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.decisions = {}          # event id -> (chosen, probability), rank answered 200
        self.rewards = {}            # event id -> value, reward answered 200
        self.statuses = Counter()    # (route, status)
        self.first_ok_after = {}     # restart index -> monotonic time of the first 200 rank
        self.restarts = []           # monotonic times at which redis-server was relaunched


def load(url: str, bodies: list, audit: Audit, stop: threading.Event, seed: int) -> None:
    """One client: rank, reward; resend rewards answered 503 until they are answered."""
    rng, client, unsent = random.Random(seed), JsonClient(url, timeout=30), []
    while not stop.is_set():
        status, data = _request(client, "POST", "/v1/loops/recs/rank", rng.choice(bodies))
        now = time.monotonic()
        with audit.lock:
            audit.statuses["rank", status] += 1
            if status == 200:
                audit.decisions[data["event_id"]] = (data["chosen"], data["probability"])
                for i, restarted in enumerate(audit.restarts):
                    if now > restarted and i not in audit.first_ok_after:
                        audit.first_ok_after[i] = now
        if status == 200:
            unsent.append((data["event_id"], float(rng.random() < 0.3)))
        elif status == 503:
            stop.wait(0.05)  # as a client honouring Retry-After would, but sooner
        unsent = _send_rewards(client, unsent, audit, rng)
    while unsent:  # Redis is back for good: every reward ends up answered
        unsent = _send_rewards(client, unsent, audit, rng)


def _send_rewards(client, unsent, audit, rng) -> list:
    left = []
    for event_id, value in unsent:
        status, _ = _request(client, "POST", f"/v1/loops/recs/events/{event_id}/reward",
                             {"value": value})
        if status == 200 and rng.random() < 0.1:  # a client retry of an accepted reward
            status, data = _request(client, "POST", f"/v1/loops/recs/events/{event_id}/reward",
                                    {"value": value})
            assert status != 200 or data["status"] == "duplicate", data
        with audit.lock:
            audit.statuses["reward", status] += 1
            if status == 200:
                audit.rewards[event_id] = value
        if status == 503:
            left.append((event_id, value))
    return left


def _request(client, method, path, body):
    try:
        return client.request(method, path, body)
    except OSError:
        client.conn.close()
        return 0, None  # connection-level failure (counted under status 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=24.0, help="length of the load")
    parser.add_argument("--down", type=float, default=2.0, help="seconds Redis stays dead")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads per worker: gthread workers, as cbserve api --threads (0: sync)")
    parser.add_argument("--appendfsync", choices=("always", "everysec"), default="always",
                        help="Redis's fsync policy (the guarantee is made for always)")
    args = parser.parse_args(argv)
    bodies = [{"context": c, "actions": a} for c, a, _, _ in workload(300, seed=11)]
    audit, stop = Audit(), threading.Event()
    with production(CONFIG, args.workers, appendfsync=args.appendfsync, threads=args.threads) as deployed:
        redis_server, api = deployed.redis, deployed.api
        threads = [threading.Thread(target=load, args=(api.url, bodies, audit, stop, i))
                   for i in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for at in (0.25, 0.60):
            time.sleep(max(0.0, started + at * args.seconds - time.monotonic()))
            redis_server.kill()
            print(f"{time.monotonic() - started:6.1f} s  redis-server killed (SIGKILL)")
            time.sleep(args.down)
            with audit.lock:
                audit.restarts.append(time.monotonic())
            redis_server.start()
            print(f"{time.monotonic() - started:6.1f} s  redis-server restarted from its append-only file")
        time.sleep(max(0.0, started + args.seconds - time.monotonic()))
        stop.set()
        for t in threads:
            t.join()
        figures = {**_audit(connect(redis_server.url), audit), "workers": args.workers,
                   "threads": args.threads}
    return _report(figures, args)


def _audit(client, audit: Audit) -> dict:
    """Every acknowledged decision and reward against what Redis holds."""
    check = check_decisions(client, "recs", audit.decisions)
    joined = Counter(f[b"e"].decode() for _, f in stream_entries(client, keys.joined("recs")))
    stored = joined_rewards(stream_entries(client, keys.joined("recs")))
    deadline = time.monotonic() + 30
    while _stat(client, "learned") < len(joined) and time.monotonic() < deadline:
        time.sleep(0.2)  # the learner catches up on the joins of the end of the run
    double = sum(n - 1 for n in joined.values() if n > 1)
    double += max(0, int(_stat(client, "rewards")) - sum(1 for r in stored.values() if r[1] == "reward"))
    lost_rewards = sum(1 for e, v in audit.rewards.items()
                       if e not in stored or stored[e] != (v, "reward"))
    recovered = [audit.first_ok_after[i] - t for i, t in enumerate(audit.restarts)
                 if i in audit.first_ok_after]
    return {"acknowledged": check.checked, "lost": check.missing + check.mismatched,
            "double_counted_rewards": double,
            "recovered_s": round(max(recovered), 3) if len(recovered) == len(audit.restarts) else None,
            "rewards_acknowledged": len(audit.rewards), "lost_rewards": lost_rewards,
            "joined": len(joined), "learned": int(_stat(client, "learned")),
            "learned_twice": max(0, int(_stat(client, "learned")) - len(joined)),
            "rank_503": audit.statuses["rank", 503], "reward_503": audit.statuses["reward", 503],
            "other_errors": sum(n for (route, s), n in audit.statuses.items() if s not in (200, 503)),
            "restarts": len(audit.restarts),
            "recovered_each_s": [round(r, 3) for r in recovered]}


def _stat(client, name) -> float:
    return float(client.hget(keys.stats("recs"), name) or 0)


def _report(f: dict, args) -> int:
    kind = f"gthread workers of {args.threads} threads" if args.threads else "sync workers"
    print(f"\ngunicorn {args.workers} {kind} + learner process, {args.clients} clients, "
          f"{args.seconds:g} s, Redis killed twice for {args.down:g} s (appendfsync {args.appendfsync})")
    rows = [("rank answered 200 (acknowledged)", f["acknowledged"]),
            ("  of which not in the log, or different", f["lost"]),
            ("rank answered 503 while Redis was down", f["rank_503"]),
            ("rewards answered 200", f["rewards_acknowledged"]),
            ("  of which not joined, or a different value", f["lost_rewards"]),
            ("reward answers 503 (resent until answered)", f["reward_503"]),
            ("rewards counted twice", f["double_counted_rewards"]),
            ("events joined / learned", f"{f['joined']} / {f['learned']}"),
            ("other errors (no 5xx but 503, no dropped connection)", f["other_errors"]),
            ("recovery after each restart (s)", ", ".join(map(str, f["recovered_each_s"])))]
    for label, value in rows:
        print(f"{label:<56}{value!s:>16}")
    print(json.dumps(f))
    bad = (f["lost"] or f["double_counted_rewards"] or f["lost_rewards"] or f["learned_twice"]
           or f["learned"] < f["joined"])  # a learner that stopped learning
    return 1 if bad or f["other_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
