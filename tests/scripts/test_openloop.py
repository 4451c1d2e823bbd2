"""service.testing.openloop, the soak's load generator: every request goes out when due,
whatever the server does, each on its own connection; answers and failures are
reported with their due time, and latency counts from it."""
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.testing import openloop


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # closes after each response, as gunicorn's sync workers

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/slow":
            time.sleep(0.3)
        self.send_response(200 if self.path != "/missing" else 404)
        self.end_headers()
        self.wfile.write(body[::-1])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address
    srv.shutdown()
    srv.server_close()


def _request(path, body):
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def test_sends_on_schedule_and_reports_every_answer(server):
    done = []
    paths = ["/ok", "/missing", "/slow"]

    def next_request(i):
        return _request(paths[i % 3], f"req-{i}".encode()), i

    began = time.monotonic()
    openloop.run(server, 50.0, 30, next_request, lambda *a: done.append(a))
    elapsed = time.monotonic() - began
    assert sorted(d[0] for d in done) == list(range(30))
    by_tag = {d[0]: d for d in done}
    for i, (tag, due, sent, end, status, body) in by_tag.items():
        assert status == (404 if i % 3 == 1 else 200)
        assert body == f"req-{i}".encode()[::-1]
        assert sent >= due and end > sent
        assert due - by_tag[0][1] == pytest.approx(i / 50.0, abs=1e-9)
    # open loop: each request after a /slow one went out before that slow answer came
    for i in range(2, 29, 3):
        assert by_tag[i + 1][2] < by_tag[i][3]
    assert elapsed >= 29 / 50.0 + 0.3  # the last due at 29/50 s, then its slow answer
    assert min(by_tag[i][3] - by_tag[i][1] for i in range(2, 30, 3)) >= 0.3


def test_failures_are_reported_not_raised():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = s.getsockname()
    done = []
    openloop.run(address, 100.0, 5, lambda i: (_request("/", b"x"), i), lambda *a: done.append(a))
    assert len(done) == 5
    assert all(d[4] is None and isinstance(d[5], OSError) for d in done)
