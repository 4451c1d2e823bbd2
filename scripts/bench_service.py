"""Requests per second and latency of POST /v1/loops/recs/rank beside a bare endpoint.

Starts its own redis-server and, side by side under the same gunicorn setup (2 sync
workers each), the cbserve app with Redis on its unix socket, the cbserve app with
Redis over TCP, a bare Flask app whose one endpoint parses the same JSON body and
returns a fixed answer, and that bare app plus the one Redis write the design asks of
every rank (plain redis-py ``XADD`` of the body, on the unix socket). Drives them with
``wrk`` (Debian package ``wrk``; without it, a Python load generator is used and the
table says so) on 200 distinct rank bodies: 20 candidates of 8 features from a
500-item catalogue, contexts of 32 features. Peak: ``--connections`` connections, in
``--rounds`` alternating rounds of ``--seconds`` each, best round per server (a VM
whose speed drifts hits them all alike); ``ratio`` is rank (unix socket) / bare,
``ratio_tcp`` the same over TCP, ``ratio_vs_bare_redis`` rank / (bare + XADD):
cbserve's own cost apart from the round trip.
Latency (p50, p99): 1 connection, which runs at about half the peak rate on this
setup (the rate is printed). ``lost`` counts rank responses whose event id is
missing from the decision log.

Usage: python scripts/bench_service.py [--seconds S] [--rounds R] [--connections C]
The last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack

import redis

from service.store import keys
from service.testing.hostcpu import cpu_times, steal_share
from service.testing.load import drive
from service.testing.procs import Gunicorn
from service.testing.redis_server import RedisServer
from service.testing.workload import workload

CONFIG = """
[service]
allow_anonymous = true
max_actions = 1000
[loops.recs]
policy = { type = "linucb", alpha = 1.0 }
reward_wait = "10m"
"""

APPS = (("rank", "service.app:create_app()", "unix_url"), ("rank_tcp", "service.app:create_app()", "url"),
        ("bare", "service.testing.load:bare_app()", None),
        ("bare_redis", "service.testing.load:bare_redis_app()", "unix_url"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one peak round")
    parser.add_argument("--rounds", type=int, default=3, help="peak rounds per endpoint")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="cbserve-bench-")
    bodies_path = os.path.join(tmp, "bodies.jsonl")
    with open(bodies_path, "w") as fh:
        for ctx, actions, _, _ in workload(200, seed=7):
            fh.write(json.dumps({"context": ctx, "actions": actions}) + "\n")
    with open(os.path.join(tmp, "cbserve.toml"), "w") as fh:
        fh.write(CONFIG)
    peaks, slow = {name: [] for name, _, _ in APPS}, {}
    log = open(os.path.join(tmp, "gunicorn.log"), "ab")
    with RedisServer() as srv, ExitStack() as stack:
        apps = {}
        for name, spec, url_attr in APPS:
            env = {**os.environ, "REDIS_URL": getattr(srv, url_attr or "url"),
                   "CBSERVE_CONFIG": os.path.join(tmp, "cbserve.toml")}
            apps[name] = stack.enter_context(
                Gunicorn(spec, env, workers=2, log=log))
            drive(apps[name].url, bodies_path, 2, args.connections, None, tmp)  # warm-up
        cpu_before = cpu_times()
        for r in range(args.rounds):  # alternating rounds: a drifting VM hits every endpoint alike
            for name, _, url_attr in APPS:
                ids = os.path.join(tmp, f"{name}-ids-{r}-") if name.startswith("rank") else None
                peaks[name].append(drive(apps[name].url, bodies_path, args.seconds, args.connections, ids, tmp))
        steal = steal_share(cpu_before, cpu_times())
        for name in ("rank", "bare"):
            slow[name] = drive(apps[name].url, bodies_path, 2 * args.seconds, 1, None, tmp)
        client = redis.Redis.from_url(srv.url)
        logged = {json.loads(f[b"j"])["EventId"] for _, f in client.xrange(keys.log("recs"))}
    returned = []
    for fname in os.listdir(tmp):
        if "-ids-" in fname:
            returned += open(os.path.join(tmp, fname)).read().split()
    lost = sum(1 for eid in returned if eid not in logged)
    shutil.rmtree(tmp, ignore_errors=True)

    def rps(res):
        return res["requests"] / res["seconds"]

    best = {name: max(runs, key=rps) for name, runs in peaks.items()}
    rate = {name: rps(res) for name, res in best.items()}
    rate.update({f"{name}_slow": rps(res) for name, res in slow.items()})
    print(f"gunicorn 2 sync workers; peak: {args.connections} connections, best of {args.rounds} "
          f"alternating {args.seconds} s rounds; latency: 1 connection; generator: {best['rank']['generator']}")
    print(f"{'endpoint':<40}{'req/s':>10}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    rows = (("bare Flask (parse JSON) peak", "bare", best["bare"], rate["bare"]),
            ("cbserve rank peak (Redis unix socket)", "rank", best["rank"], rate["bare"]),
            ("cbserve rank peak (Redis TCP)", "rank_tcp", best["rank_tcp"], rate["bare"]),
            ("bare + one XADD of the body, peak", "bare_redis", best["bare_redis"], rate["bare"]),
            ("bare Flask, 1 connection", "bare_slow", slow["bare"], rate["bare"]),
            ("cbserve rank, 1 connection", "rank_slow", slow["rank"], rate["rank"]))
    for label, key, res, base in rows:
        print(f"{label:<40}{rate[key]:>10.0f}{rate[key] / base:>8.2f}{res['p50_ms']:>9.2f}"
              f"{res['p99_ms']:>9.2f}{res['non2xx'] + res['errors']:>9d}")
    print("rounds req/s: " + "; ".join(f"{n} " + " ".join(f"{rps(x):.0f}" for x in runs)
                                       for n, runs in peaks.items()))
    print(f"rank responses checked against the log: {len(returned)}, lost: {lost}")
    print(f"host CPU stolen by the hypervisor during the peak rounds: {steal}")
    errors = sum(x["non2xx"] + x["errors"] for runs in (peaks["rank"], peaks["rank_tcp"]) for x in runs)
    figures = {"rank_rps": round(rate["rank"], 1), "bare_rps": round(rate["bare"], 1),
               "ratio": round(rate["rank"] / rate["bare"], 3),
               "rank_tcp_rps": round(rate["rank_tcp"], 1),
               "ratio_tcp": round(rate["rank_tcp"] / rate["bare"], 3),
               "bare_redis_rps": round(rate["bare_redis"], 1),
               "ratio_vs_bare_redis": round(rate["rank"] / rate["bare_redis"], 3),
               "p50_ms": round(slow["rank"]["p50_ms"], 3), "p99_ms": round(slow["rank"]["p99_ms"], 3),
               "latency_rate_share": round(rate["rank_slow"] / rate["rank"], 3),
               "lost": lost, "checked": len(returned),
               "rank_errors": errors + slow["rank"]["non2xx"] + slow["rank"]["errors"],
               "generator": best["rank"]["generator"], "steal_share": steal}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
