"""API keys: the auth table per route (no key, wrong key, wrong loop, wrong role, right
key), both header styles, hashed key files, configuration errors, and keys never
showing up in logs or error bodies."""
import hashlib
import http.client
import logging
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from service.api.auth import load_keys, parse_key
from service.app import create_app
from service.config import parse_config
from service.errors import ConfigError
from service.testing.procs import service_env
from service.testing.redis_server import free_port

from .test_api import call

DECIDE_HERO = "decide-hero-0123456789abcdef"
DECIDE_ALL = "decide-all-0123456789abcdef"
ADMIN_ALL = "admin-all-0123456789abcdefgh"
ADMIN_RECS = "admin-recs-0123456789abcdef"
KEYS = [parse_key({"key": DECIDE_HERO, "role": "decide", "loops": ["hero"], "name": "web"}, "k0", False),
        parse_key({"key": DECIDE_ALL, "role": "decide", "name": "all"}, "k1", False),
        parse_key({"key": ADMIN_ALL, "role": "admin", "loops": "*", "name": "ops"}, "k2", False),
        parse_key({"key": ADMIN_RECS, "role": "admin", "loops": ["recs"], "name": "recs-team"},
                  "k3", False)]


@pytest.fixture
def secured(config, r):
    return create_app(config, r, keys=KEYS).test_client()


# (method, path, body, the key that is right, a key of the wrong loop, of the wrong role, status with the right key)
ROUTES = [
    ("post", "/v1/loops/hero/rank", {"context": {}}, DECIDE_HERO, ADMIN_RECS, None, 200),
    ("post", "/v1/loops/hero/events/ev-x/reward", {"value": 1}, DECIDE_HERO, ADMIN_RECS, None, 404),
    ("post", "/v1/loops/hero/events/ev-x/activate", None, DECIDE_HERO, ADMIN_RECS, None, 404),
    ("post", "/v1/loops/hero/sessions/s-1/end", None, DECIDE_HERO, ADMIN_RECS, None, 400),
    ("get", "/v1/loops/hero", None, ADMIN_ALL, ADMIN_RECS, DECIDE_HERO, 200),
    ("get", "/v1/loops", None, ADMIN_ALL, None, DECIDE_ALL, 200),
    ("get", "/metrics", None, ADMIN_ALL, None, DECIDE_ALL, 200),
    ("get", "/openapi.json", None, DECIDE_HERO, None, None, 200),
]


@pytest.mark.parametrize("method,path,body,right,wrong_loop,wrong_role,ok", ROUTES,
                         ids=[f"{m} {p}" for m, p, *_ in ROUTES])
def test_auth_table(secured, method, path, body, right, wrong_loop, wrong_role, ok):
    def send(headers):
        return call(secured, method, path, json=body, headers=headers)

    res = send({})
    assert res.status_code == 401 and res.headers["WWW-Authenticate"].startswith("Bearer")
    assert res.get_json()["error"]["code"] == "unauthorized"
    assert send({"Authorization": "Bearer not-a-key-of-ours-at-all"}).status_code == 401
    if wrong_loop:
        res = send({"X-API-Key": wrong_loop})
        assert res.status_code == 403 and "loop 'hero'" in res.get_json()["error"]["message"]
    if wrong_role:
        res = send({"Authorization": f"Bearer {wrong_role}"})
        assert res.status_code == 403 and "(role decide) may not use admin routes" in res.get_json()["error"]["message"]
    assert send({"Authorization": f"Bearer {right}"}).status_code == ok
    assert send({"X-API-Key": right}).status_code == ok


def test_healthz_needs_no_key_and_unknown_routes_do(secured):
    assert call(secured, "get", "/healthz").status_code == 200
    assert secured.get("/v1/nothing-here").status_code == 401
    assert secured.get("/v1/nothing-here", headers={"X-API-Key": DECIDE_ALL}).status_code == 404


def test_an_admin_scoped_to_one_loop_sees_only_that_loop(secured):
    res = call(secured, "get", "/v1/loops", headers={"X-API-Key": ADMIN_RECS})
    assert [loop["name"] for loop in res.get_json()["loops"]] == ["recs"]
    text = secured.get("/metrics", headers={"X-API-Key": ADMIN_RECS}).get_data(as_text=True)
    assert 'loop="recs"' in text and 'loop="hero"' not in text
    res = call(secured, "get", "/v1/loops", headers={"X-API-Key": ADMIN_ALL})
    assert [loop["name"] for loop in res.get_json()["loops"]] == ["hero", "recs"]


def test_an_admin_key_may_also_decide(secured):
    res = call(secured, "post", "/v1/loops/hero/rank", json={}, headers={"X-API-Key": ADMIN_ALL})
    assert res.status_code == 200


def test_keys_never_reach_logs_or_error_bodies(secured, caplog):
    caplog.set_level(logging.DEBUG)
    bodies = [secured.post("/v1/loops/recs/rank", json={}, headers={"X-API-Key": DECIDE_HERO}),
              secured.get("/v1/loops", headers={"Authorization": "Bearer wrong-key-abcdefghijkl"}),
              secured.post("/v1/loops/hero/rank", data="{", headers={"X-API-Key": DECIDE_HERO},
                           content_type="application/json")]
    assert [b.status_code for b in bodies] == [403, 401, 400]
    for secret in (DECIDE_HERO, "wrong-key-abcdefghijkl"):
        assert secret not in caplog.text
        assert all(secret not in b.get_data(as_text=True) for b in bodies)


def test_a_file_of_hashes_and_the_environment(tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nname = "ops"\nrole = "admin"\nloops = "*"\n'
                    f'sha256 = "{hashlib.sha256(ADMIN_ALL.encode()).hexdigest()}"\n')
    env = {"CBSERVE_API_KEYS_FILE": str(path),
           "CBSERVE_API_KEYS": f'[{{"key": "{DECIDE_HERO}", "role": "decide", "loops": ["hero"]}}]'}
    keys = load_keys(env)
    assert [(k.name, k.role, k.loops) for k in keys] == [
        ("CBSERVE_API_KEYS[0]", "decide", frozenset({"hero"})), ("ops", "admin", None)]
    assert keys[1].digest == hashlib.sha256(ADMIN_ALL.encode()).digest()


@pytest.mark.parametrize("env,message", [
    ({"CBSERVE_API_KEYS": "[{"}, "CBSERVE_API_KEYS: not valid JSON"),
    ({"CBSERVE_API_KEYS": '{"key": "x"}'}, "CBSERVE_API_KEYS: must be a JSON list"),
    ({"CBSERVE_API_KEYS": '[{"key": "short", "role": "decide"}]'}, "CBSERVE_API_KEYS[0].key: must be a string of at least 16"),
    ({"CBSERVE_API_KEYS": f'[{{"key": "{ADMIN_ALL}", "role": "root"}}]'}, "CBSERVE_API_KEYS[0].role: unknown role 'root'"),
    ({"CBSERVE_API_KEYS": f'[{{"key": "{ADMIN_ALL}"}}]'}, "CBSERVE_API_KEYS[0].role: required (allowed: decide, admin)"),
    ({"CBSERVE_API_KEYS": f'[{{"key": "{ADMIN_ALL}", "role": null}}]'},
     "CBSERVE_API_KEYS[0].role: must be a role name, got null"),
    ({"CBSERVE_API_KEYS": f'[{{"key": "{ADMIN_ALL}", "role": "admin", "loops": []}}]'}, "CBSERVE_API_KEYS[0].loops"),
    ({"CBSERVE_API_KEYS_FILE": "/nonexistent/keys.toml"}, "CBSERVE_API_KEYS_FILE: cannot read"),
])
def test_bad_key_configuration_names_the_field(env, message):
    with pytest.raises(ConfigError) as info:
        load_keys(env)
    assert message in info.value.message
    assert ADMIN_ALL not in info.value.message


def test_a_key_file_may_not_hold_plain_keys(tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nrole = "admin"\nkey = "{ADMIN_ALL}"\n')
    with pytest.raises(ConfigError, match=r"keys\[0\].key: unknown field"):
        load_keys({"CBSERVE_API_KEYS_FILE": str(path)})


def test_production_api_refuses_to_run_without_keys(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://127.0.0.1:1/0"}
    config = os.path.join(os.path.dirname(__file__), "..", "..", "config", "example.toml")
    proc = subprocess.run([sys.executable, "-m", "service.cli", "api", "--config", config],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "no API key configured" in proc.stderr


@pytest.mark.parametrize("threads, connection", [("0", "close"), ("2", "keep-alive")])
def test_production_api_runs_open_when_the_config_allows_it(redis_server, tmp_path, threads,
                                                            connection):
    """Sync workers close each connection; with ``--threads``, gthread workers keep it."""
    path, port = tmp_path / "c.toml", free_port()
    path.write_text("[service]\nallow_anonymous = true\n[loops.recs]\n")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "api", "--config", str(path),
                             "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", threads],
                            env=_open_env(redis_server.url, path), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, res = time.monotonic() + 30, None
        while res is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                res = urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/loops", timeout=2)
            except OSError:
                time.sleep(0.2)
        assert res is not None and res.status == 200, (
            proc.stderr.read().decode() if proc.poll() is not None else "no answer")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # asks for keep-alive
        conn.request("GET", "/v1/loops")
        answer = conn.getresponse()
        assert answer.status == 200 and answer.headers["Connection"] == connection
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_production_api_refuses_a_negative_thread_count(redis_server, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[service]\nallow_anonymous = true\n[loops.recs]\n")
    proc = subprocess.run([sys.executable, "-m", "service.cli", "api", "--config", str(path),
                           "--threads", "-1"], capture_output=True, text=True, timeout=60,
                          env=_open_env(redis_server.url, path), cwd=tmp_path)
    assert proc.returncode == 2 and "--threads: must be at least 0, got -1" in proc.stderr


def _open_env(redis_url, config_path):
    """The environment of an API worker with no API key configured."""
    return {k: v for k, v in service_env(redis_url, str(config_path)).items()
            if not k.startswith("CBSERVE_API_KEYS")}


@pytest.mark.parametrize("allow", [False, True])
def test_the_wsgi_entry_point_runs_open_only_when_the_config_allows_it(redis_server, tmp_path,
                                                                       monkeypatch, allow):
    path = tmp_path / "c.toml"
    path.write_text(f"[service]\nallow_anonymous = {str(allow).lower()}\n[loops.recs]\n")
    for name, value in _open_env(redis_server.url, path).items():
        monkeypatch.setenv(name, value)
    for name in ("CBSERVE_API_KEYS", "CBSERVE_API_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    if allow:
        assert create_app().test_client().get("/v1/loops").status_code == 200
    else:
        with pytest.raises(ConfigError, match="service.allow_anonymous: no API key configured"):
            create_app()
    # a caller that passes its configuration decides itself (cbserve serve runs open)
    assert create_app(parse_config({"loops": {"recs": {}}})).test_client().get("/v1/loops").status_code == 200


def _gunicorn(env, cwd):
    return subprocess.run([sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", "127.0.0.1:0",
                           "service.app:create_app()"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd)


def test_gunicorn_does_not_start_open_without_allow_anonymous(redis_server, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[loops.recs]\n")
    proc = _gunicorn(_open_env(redis_server.url, path), tmp_path)
    assert proc.returncode != 0
    assert "service.allow_anonymous: no API key configured" in proc.stderr


def test_gunicorn_stops_without_a_configuration(redis_server, tmp_path):
    env = {k: v for k, v in _open_env(redis_server.url, "x").items() if k != "CBSERVE_CONFIG"}
    proc = _gunicorn(env, tmp_path)  # stops, rather than respawning its worker forever
    assert proc.returncode != 0 and "CBSERVE_CONFIG: not set" in proc.stderr
