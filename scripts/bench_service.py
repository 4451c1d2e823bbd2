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
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from bench_policies import workload  # noqa: E402
from hostcpu import cpu_times, steal_share  # noqa: E402

from service.store import keys  # noqa: E402
from service.procs import Gunicorn  # noqa: E402
from service.redis_server import RedisServer  # noqa: E402

CONFIG = """
[service]
allow_anonymous = true
max_actions = 1000
[loops.recs]
policy = { type = "linucb", alpha = 1.0 }
reward_wait = "10m"
"""

WRK_SCRIPT = """
local bodies, requests, n, out = {}, {}, 0, nil
local counter = 0
function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", args[2], {["Content-Type"] = "application/json"}, body)
  end
  if args[3] ~= "-" then out = io.open(args[3] .. tid, "w"); out:setvbuf("full") end
end
function request() n = n + 1; return requests[(n % #requests) + 1] end
function response(status, headers, body)
  if out and status == 200 then
    local id = body:match('"event_id"%s*:%s*"([^"]+)"')
    if id then out:write(id, "\\n") end
  end
  if out and n % 200 == 0 then out:flush() end
end
function done(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "non2xx": %d, "errors": %d, '
    .. '"p50_ms": %f, "p99_ms": %f}\\n', summary.requests, summary.duration / 1e6,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def bare_app():
    """The baseline: parse the same JSON body, answer a fixed decision."""
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post("/v1/loops/recs/rank")
    def rank():
        request.get_json()
        return jsonify({"event_id": "fixed", "chosen": "item-1", "probability": 1.0,
                        "ranking": [], "model": {"policy": "bare", "version": 0}})

    return app


def bare_redis_app():
    """A second baseline: the bare endpoint plus the one write to Redis the design asks of
    every rank (the body appended to a stream with plain redis-py, before answering).
    rank / this isolates cbserve's own cost from the round trip the design mandates."""
    import redis
    from flask import Flask, jsonify, request

    app = Flask("bare_redis")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])

    @app.post("/v1/loops/recs/rank")
    def rank():
        request.get_json()
        client.xadd("bench:bare", {"j": request.get_data()}, maxlen=100_000, approximate=True)
        return jsonify({"event_id": "fixed", "chosen": "item-1", "probability": 1.0,
                        "ranking": [], "model": {"policy": "bare", "version": 0}})

    return app


def drive(url, bodies_path, seconds, connections, ids_prefix, tmp):
    """Run wrk (or the Python fallback); returns its RESULT dict."""
    if shutil.which("wrk"):
        script = os.path.join(tmp, "rank.lua")
        with open(script, "w") as fh:
            fh.write(WRK_SCRIPT)
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script,
               url, "--", bodies_path, "/v1/loops/recs/rank", ids_prefix or "-"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
        return {**json.loads(line[7:]), "generator": "wrk"}
    return python_load(url, bodies_path, seconds, connections, ids_prefix)


def python_load(url, bodies_path, seconds, connections, ids_prefix):
    """Fallback generator: threads with keep-alive http.client connections."""
    import http.client
    import threading

    bodies = open(bodies_path).read().splitlines()
    host, port = url.split("//")[1].split(":")
    lat, ids, lock, stop = [], [], threading.Lock(), time.monotonic() + seconds

    def worker(t):
        conn, i = http.client.HTTPConnection(host, int(port)), t
        while time.monotonic() < stop:
            start = time.perf_counter()
            conn.request("POST", "/v1/loops/recs/rank", bodies[i % len(bodies)],
                         {"Content-Type": "application/json"})
            res = conn.getresponse()
            data = res.read()
            if res.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, int(port))
            with lock:
                lat.append(time.perf_counter() - start)
                if ids_prefix and res.status == 200:
                    ids.append(json.loads(data)["event_id"])
            i += connections

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(connections)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if ids_prefix:
        with open(ids_prefix + "1", "w") as fh:
            fh.write("\n".join(ids) + "\n")
    lat.sort()
    return {"requests": len(lat), "seconds": time.monotonic() - t0, "non2xx": 0, "errors": 0,
            "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
            "generator": "python (wrk not installed)"}


APPS = (("rank", "service.app:create_app()", "unix_url"), ("rank_tcp", "service.app:create_app()", "url"),
        ("bare", "bench_service:bare_app()", None),
        ("bare_redis", "bench_service:bare_redis_app()", "unix_url"))


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
                Gunicorn(spec, env, workers=2, pythonpath=os.path.join(ROOT, "scripts"), log=log))
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
