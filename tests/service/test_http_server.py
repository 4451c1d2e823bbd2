"""Request bodies over real HTTP connections, on the servers cbserve runs under
(werkzeug's in ``cbserve serve``, gunicorn's sync workers in production, gunicorn's
gthread workers as ``cbserve api --threads``): a streamed
body over the limit is a 413, a body that stops arriving is a 408 within
``service.read_timeout``, and the server goes on serving."""
import http.client
import io
import json
import socket
import threading
import time

import pytest
import redis
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response

from service.api.body import request_handler
from service.app import create_app
from service.embedded import RunningService
from service.testing.procs import Gunicorn, service_env

from tests.conftest import make_config
from .test_api import DOC, check_openapi

RANK = "/v1/loops/recs/rank"
LIMIT = 2048
SERVICE = {"max_body_bytes": LIMIT, "read_timeout": "1s"}
GOOD = {"context": {"user": {"age": 31}}, "actions": ["a", "b"]}
OVER = json.dumps({"context": {"user": {"bio": "x" * 1000, "more": "y" * 1000}},
                  "actions": ["a", "b"]}).encode()  # over 2048 bytes, each string within limits


def _host_port(url):
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _chunked(url, body: bytes):
    """POST ``body`` with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    conn = http.client.HTTPConnection(*_host_port(url), timeout=10)
    pieces = iter([body[i:i + 500] for i in range(0, len(body), 500)])
    conn.request("POST", RANK, body=pieces, headers={"Content-Type": "application/json"},
                 encode_chunked=True)
    res = conn.getresponse()
    status, answer = res.status, json.loads(res.read())
    conn.close()
    return status, answer


def _short_body(url, path=RANK):
    """Announce 1000 bytes, send 10 and wait: ``(seconds until the answer, its head)``."""
    started = time.monotonic()
    with socket.create_connection(_host_port(url), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: cbserve\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000\r\n\r\n".encode() + b'{"context"')
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
    return time.monotonic() - started, answer


def _rank(url):
    conn = http.client.HTTPConnection(*_host_port(url), timeout=10)
    conn.request("POST", RANK, body=json.dumps(GOOD), headers={"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()
    return status


def _check_timeout_answer(seconds, answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    assert seconds < 10 and head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert json.loads(body)["error"] == {
        "code": "request_timeout",
        "message": "body of 1000 bytes not received within service.read_timeout = 1 s"}
    assert "408" in DOC["paths"]["/v1/loops/{loop}/rank"]["post"]["responses"]


@pytest.fixture
def werkzeug_url(redis_server, r):
    client = redis.Redis.from_url(redis_server.url)
    with RunningService(make_config(**SERVICE), client) as svc:
        yield svc.url
    client.close()


def _gunicorn(redis_server, tmp_path, threads):
    path = tmp_path / "cbserve.toml"
    path.write_text(f'[service]\nmax_body_bytes = {LIMIT}\nread_timeout = "1s"\n'
                    'allow_anonymous = true\n[loops.recs]\npolicy = { type = "linucb" }\n')
    env = {k: v for k, v in service_env(redis_server.url, str(path)).items()
           if not k.startswith("CBSERVE_API_KEYS")}
    return Gunicorn("service.app:create_app()", env, workers=1, threads=threads)  # one worker: any hold shows


@pytest.fixture
def gunicorn_url(redis_server, r, tmp_path):
    with _gunicorn(redis_server, tmp_path, 0) as api:
        yield api.url


@pytest.fixture
def gthread_url(redis_server, r, tmp_path):
    with _gunicorn(redis_server, tmp_path, 2) as api:
        yield api.url


SERVERS = ["werkzeug_url", "gunicorn_url", "gthread_url"]


@pytest.mark.parametrize("server", SERVERS)
def test_a_chunked_body_over_the_limit_is_a_413_naming_it(server, request):
    url = request.getfixturevalue(server)
    status, answer = _chunked(url, OVER)
    assert status == 413 and answer["error"] == {
        "code": "request_entity_too_large", "message": f"body exceeds service.max_body_bytes = {LIMIT}"}
    assert _chunked(url, json.dumps(GOOD).encode())[0] == 200


@pytest.mark.parametrize("server", SERVERS)
def test_a_body_that_stops_arriving_is_a_408_and_the_server_serves_on(server, request):
    url = request.getfixturevalue(server)
    _check_timeout_answer(*_short_body(url))
    assert _rank(url) == 200


def test_a_route_that_reads_no_body_does_not_wait_for_one_either(werkzeug_url):
    seconds, answer = _short_body(werkzeug_url, "/v1/loops/recs/events/e1/activate")
    assert seconds < 10 and answer.startswith(b"HTTP/1.1 404")
    assert _rank(werkzeug_url) == 200


def _streamed(app, body: bytes):
    """Call the app as a server hands it a dechunked body: no Content-Length, input
    terminated by the server."""
    environ = EnvironBuilder(path=RANK, method="POST", input_stream=io.BytesIO(body),
                             content_type="application/json").get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    return Response(*run_wsgi_app(app, environ))


def test_a_streamed_body_is_held_to_the_limit_exactly(r):
    app = create_app(make_config(**SERVICE), r)
    res = _streamed(app, OVER)
    assert res.status_code == 413
    check_openapi("post", RANK, res)
    assert res.json["error"]["message"] == f"body exceeds service.max_body_bytes = {LIMIT}"
    at_limit = json.dumps(GOOD).encode().ljust(LIMIT)  # JSON padded with spaces
    assert _streamed(app, at_limit).status_code == 200
    assert _streamed(app, at_limit + b" ").status_code == 413


def test_the_request_handler_bounds_a_stalled_request_line(r):
    app = create_app(make_config(**SERVICE), r)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=request_handler(1.0))
    url = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/loops/recs/ra")
            assert sock.recv(1024) == b""  # closed by the server, not by our 10 s timeout
        assert time.monotonic() - started < 10
        assert _rank(url) == 200
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
