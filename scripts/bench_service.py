"""Requests per second and latency of POST /v1/loops/recs/rank beside bare endpoints,
on three WSGI servers.

Starts its own redis-server and, side by side on each server (gunicorn with 2 sync
workers: what ``cbserve api`` runs; gunicorn with 2 gthread workers of ``--threads``
threads; granian's WSGI interface with 2 workers of one Python thread), the cbserve
app with Redis on its unix socket, a bare Flask app whose one endpoint parses the same
JSON body and returns a fixed answer, and that bare app plus the one Redis write the
design asks of every rank (plain redis-py ``XADD`` of the body, on the unix socket);
and, on gunicorn sync, the cbserve app with Redis over TCP. Drives them with ``wrk``
(Debian package ``wrk``; without it, a Python load generator is used and the table
says so) on 200 distinct rank bodies: 20 candidates of 8 features from a 500-item
catalogue, contexts of 32 features. Peak: ``--connections`` connections, in
``--rounds`` alternating rounds of ``--seconds`` each, best round per endpoint (a VM
whose speed drifts hits them all alike).

Figures of the production server (gunicorn sync): ``ratio`` is rank / bare,
``ratio_tcp`` the same over TCP, ``ratio_vs_bare_redis`` rank / (bare + XADD):
cbserve's own cost apart from the round trip; ``ratio_vs_gunicorn_bare`` rank / bare on
gunicorn sync. Per server ``S``: ``S_rank_rps``, ``S_bare_rps``, ``S_bare_redis_rps``,
``S_ratio_vs_bare_redis``, ``S_ratio_vs_gunicorn_bare`` (its rank / bare Flask on
gunicorn sync) and ``S_stalled_answer_s``: seconds until a rank is answered while 8
clients stall their bodies (``service.read_timeout`` is 2 s here; null: no answer
within 10 s, :func:`service.testing.load.answer_while_stalled`), with the answer's status
``S_stalled_answer_status``. Latency (p50, p99): 1 connection to the production server, which runs
at about half the peak rate on this setup (the rate is printed). ``lost`` counts rank
responses whose event id is missing from the decision log.

Usage: python scripts/bench_service.py [--seconds S] [--rounds R] [--connections C]
       [--threads T] [--servers gunicorn,gthread,granian]
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
from service.testing.load import answer_while_stalled, drive
from service.testing.procs import Granian, Gunicorn
from service.testing.redis_server import RedisServer
from service.testing.workload import workload

CONFIG = """
[service]
allow_anonymous = true
max_actions = 1000
read_timeout = "2s"
[loops.recs]
policy = { type = "linucb", alpha = 1.0 }
reward_wait = "10m"
"""

#: (name, factory, Redis URL attribute): the app and the address of Redis it is given
APPS = (("rank", "service.app:create_app", "unix_url"), ("bare", "service.testing.load:bare_app", None),
        ("bare_redis", "service.testing.load:bare_redis_app", "unix_url"),
        ("rank_tcp", "service.app:create_app", "url"))
#: The server ``cbserve api`` runs; the others are measured beside it.
PRODUCTION = "gunicorn"
SERVERS = ("gunicorn", "gthread", "granian")


def start_server(server: str, factory: str, env: dict, threads: int, log):
    """The app ``factory`` (``module:function``) under ``server``, 2 workers."""
    if server == "granian":
        return Granian(factory, env, workers=2, log=log)
    return Gunicorn(f"{factory}()", env, workers=2, log=log,
                    threads=threads if server == "gthread" else 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one peak round")
    parser.add_argument("--rounds", type=int, default=3, help="peak rounds per endpoint")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4, help="threads of a gthread worker")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"servers to compare, comma-separated ({PRODUCTION} is always run)")
    args = parser.parse_args(argv)
    servers = list(dict.fromkeys([PRODUCTION] + [s for s in args.servers.split(",") if s]))
    for server in servers:
        if server not in SERVERS:
            parser.error(f"--servers: unknown server {server!r} (known: {', '.join(SERVERS)})")
    tmp = tempfile.mkdtemp(prefix="cbserve-bench-")
    bodies_path = os.path.join(tmp, "bodies.jsonl")
    with open(bodies_path, "w") as fh:
        for ctx, actions, _, _ in workload(200, seed=7):
            fh.write(json.dumps({"context": ctx, "actions": actions}) + "\n")
    with open(os.path.join(tmp, "cbserve.toml"), "w") as fh:
        fh.write(CONFIG)
    endpoints = [(server, app) for server in servers for app in APPS
                 if app[0] != "rank_tcp" or server == PRODUCTION]
    peaks, slow = {(s, a[0]): [] for s, a in endpoints}, {}
    log = open(os.path.join(tmp, "server.log"), "ab")
    with RedisServer() as srv, ExitStack() as stack:
        apps = {}
        for server, (name, factory, url_attr) in endpoints:
            env = {**os.environ, "REDIS_URL": getattr(srv, url_attr or "url"),
                   "CBSERVE_CONFIG": os.path.join(tmp, "cbserve.toml")}
            apps[server, name] = stack.enter_context(start_server(server, factory, env, args.threads, log))
            drive(apps[server, name].url, bodies_path, 2, args.connections, None, tmp)  # warm-up
        cpu_before = cpu_times()
        for r in range(args.rounds):  # alternating rounds: a drifting VM hits every endpoint alike
            for key, api in apps.items():
                ids = os.path.join(tmp, f"{key[0]}-{key[1]}-ids-{r}-") if key[1].startswith("rank") else None
                peaks[key].append(drive(api.url, bodies_path, args.seconds, args.connections, ids, tmp))
        steal = steal_share(cpu_before, cpu_times())
        with open(bodies_path, "rb") as fh:
            first = fh.readline().strip()
        stalled = {s: answer_while_stalled(apps[s, "rank"].url, first) for s in servers}
        for name in ("rank", "bare"):
            slow[name] = drive(apps[PRODUCTION, name].url, bodies_path, 2 * args.seconds, 1, None, tmp)
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

    best = {key: max(runs, key=rps) for key, runs in peaks.items()}
    rate = {key: rps(res) for key, res in best.items()}
    base = rate[PRODUCTION, "bare"]
    print(f"peak: {args.connections} connections, best of {args.rounds} alternating {args.seconds} s "
          f"rounds; latency: 1 connection; generator: {best[PRODUCTION, 'rank']['generator']}")
    print(f"{'server':<22}{'endpoint':<36}{'req/s':>9}{'÷ gunicorn bare':>16}{'p99 ms':>9}{'non-2xx':>9}")
    labels = {"bare": "bare Flask (parse JSON)", "bare_redis": "bare + one XADD of the body",
              "rank": "cbserve rank (Redis unix socket)", "rank_tcp": "cbserve rank (Redis TCP)"}
    label_of = {"gunicorn": "gunicorn 2 sync", "gthread": f"gunicorn 2x{args.threads} gthread",
                "granian": "granian 2x1 WSGI"}
    for (server, name), res in best.items():
        print(f"{label_of[server]:<22}{labels[name]:<36}{rate[server, name]:>9.0f}"
              f"{rate[server, name] / base:>16.2f}{res['p99_ms']:>9.2f}{res['non2xx'] + res['errors']:>9d}")
    for name, res in slow.items():
        print(f"{label_of[PRODUCTION]:<22}{labels[name] + ', 1 connection':<36}{rps(res):>9.0f}"
              f"{'':>16}{res['p99_ms']:>9.2f}{res['non2xx'] + res['errors']:>9d}")
    print("rounds req/s: " + "; ".join(f"{s}/{n} " + " ".join(f"{rps(x):.0f}" for x in runs)
                                       for (s, n), runs in peaks.items()))
    for server, (seconds, status) in stalled.items():
        print(f"{label_of[server]}: a rank while 8 clients stall their bodies (read_timeout 2 s): "
              + (f"answered {status} in {seconds:.2f} s" if seconds is not None else "no answer within 10 s"))
    print(f"rank responses checked against the log: {len(returned)}, lost: {lost}")
    print(f"host CPU stolen by the hypervisor during the peak rounds: {steal}")
    errors = sum(x["non2xx"] + x["errors"] for (_, n), runs in peaks.items() if n.startswith("rank")
                 for x in runs)
    p = PRODUCTION
    figures = {"server": p, "rank_rps": round(rate[p, "rank"], 1), "bare_rps": round(base, 1),
               "ratio": round(rate[p, "rank"] / base, 3),
               "rank_tcp_rps": round(rate[p, "rank_tcp"], 1),
               "ratio_tcp": round(rate[p, "rank_tcp"] / base, 3),
               "bare_redis_rps": round(rate[p, "bare_redis"], 1),
               "ratio_vs_bare_redis": round(rate[p, "rank"] / rate[p, "bare_redis"], 3),
               "ratio_vs_gunicorn_bare": round(rate[p, "rank"] / base, 3),
               "p50_ms": round(slow["rank"]["p50_ms"], 3), "p99_ms": round(slow["rank"]["p99_ms"], 3),
               "latency_rate_share": round(rps(slow["rank"]) / rate[p, "rank"], 3),
               "lost": lost, "checked": len(returned),
               "rank_errors": errors + slow["rank"]["non2xx"] + slow["rank"]["errors"],
               "generator": best[p, "rank"]["generator"], "steal_share": steal}
    for server in servers:
        for name in ("rank", "bare", "bare_redis"):
            figures[f"{server}_{name}_rps"] = round(rate[server, name], 1)
        figures[f"{server}_ratio_vs_bare_redis"] = round(rate[server, "rank"] / rate[server, "bare_redis"], 3)
        figures[f"{server}_ratio_vs_gunicorn_bare"] = round(rate[server, "rank"] / base, 3)
        seconds, status = stalled[server]
        figures[f"{server}_stalled_answer_s"] = None if seconds is None else round(seconds, 2)
        figures[f"{server}_stalled_answer_status"] = status
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
