"""Closed-loop load on a rank endpoint, and the bare baselines it is compared with.

:func:`drive` runs ``wrk`` (Debian package ``wrk``) with :data:`WRK_SCRIPT` over a file
of rank bodies, or a Python generator of keep-alive threads where wrk is missing (the
result says which). :func:`bare_app` and :func:`bare_redis_app` are gunicorn apps
(``service.testing.load:bare_app()``) that answer a rank without deciding: what a rank
costs beyond parsing its body, and beyond the one Redis write every rank makes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

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


def drive(url, bodies_path, seconds, connections, ids_prefix, tmp, path="/v1/loops/recs/rank"):
    """Run wrk (or the Python fallback) POSTing the bodies to ``path``; returns its RESULT
    dict. With ``ids_prefix``, the event ids of the 200 answers are written to files
    named from it."""
    if shutil.which("wrk"):
        script = os.path.join(tmp, "rank.lua")
        with open(script, "w") as fh:
            fh.write(WRK_SCRIPT)
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script,
               url, "--", bodies_path, path, ids_prefix or "-"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
        return {**json.loads(line[7:]), "generator": "wrk"}
    return python_load(url, bodies_path, seconds, connections, ids_prefix, path)


def python_load(url, bodies_path, seconds, connections, ids_prefix, path="/v1/loops/recs/rank"):
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
            conn.request("POST", path, bodies[i % len(bodies)],
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


def answer_while_stalled(url, body: bytes, stalled: int = 8, wait: float = 10.0,
                         path="/v1/loops/recs/rank") -> tuple:
    """``(seconds, status)`` of a rank sent while ``stalled`` other clients each announce
    a 1,000-byte body and send 10 bytes of it; ``(None, None)`` when no answer comes
    within ``wait``.

    A server that bounds body reads (``service.read_timeout``) answers them 408 and
    then the rank; one that waits for the body as long as the client keeps the
    connection open does not answer at all.
    """
    import http.client
    import socket

    host, port = url.removeprefix("http://").split(":")
    held = []
    try:
        for _ in range(stalled):
            sock = socket.create_connection((host, int(port)), timeout=wait)
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: cbserve\r\nContent-Type: application/json"
                         "\r\nContent-Length: 1000\r\n\r\n".encode() + b'{"context"')
            held.append(sock)
        time.sleep(0.2)  # the stalled requests reach the workers first
        started = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=wait)
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            status = conn.getresponse().status
        except OSError:
            return None, None
        finally:
            conn.close()
        return time.monotonic() - started, status
    finally:
        for sock in held:
            sock.close()
