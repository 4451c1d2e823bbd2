"""An open-loop HTTP/1.1 load generator in one thread: request i is due at i / rate.

Each request goes out when due on a new connection (gunicorn's sync workers close
after every response), whatever happened to earlier ones, so a stalled server cannot
slow the arrivals down and hide its queue: latency counts from the due time. One
thread multiplexing non-blocking sockets costs the shared CPU about half of what a
pool of blocking threads does (no GIL hand-offs), and sends on time.
"""
from __future__ import annotations

import errno
import selectors
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Exchange:
    """One request in flight: what to send, when it was due and sent, what came back."""

    request: bytes
    tag: object
    due: float
    sent: float = 0.0
    out: int = 0
    chunks: list = field(default_factory=list)


def parse_response(raw: bytes) -> tuple:
    """``(status, body)`` of a complete HTTP/1.1 response read until the server closed."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head[9:12]), body


def run(address, rate: float, total: int, next_request, on_done, timeout: float = 30.0) -> None:
    """Send ``total`` requests at ``rate`` per second to ``address``.

    ``next_request(i)`` gives ``(request bytes, tag)`` for slot i when it is due;
    ``on_done(tag, due, sent, done, status, body)`` is called on each response, with
    ``status`` None and ``body`` the exception when the exchange failed.
    """
    sel = selectors.DefaultSelector()
    start, i, checked = time.monotonic() + 0.2, 0, 0.0
    try:
        while i < total or sel.get_map():
            now = time.monotonic()
            while i < total and start + i / rate <= now:
                request, tag = next_request(i)
                ex = Exchange(request, tag, start + i / rate, now)
                i += 1
                sock = socket.socket(socket.AF_UNIX if isinstance(address, str) else socket.AF_INET,
                                     socket.SOCK_STREAM)
                sock.setblocking(False)
                code = sock.connect_ex(address)
                if code not in (0, errno.EINPROGRESS):
                    sock.close()
                    on_done(tag, ex.due, now, now, None, OSError(code, errno.errorcode.get(code, "")))
                    continue
                sel.register(sock, selectors.EVENT_WRITE, ex)
            wait = start + i / rate - time.monotonic() if i < total else 0.1
            for key, events in sel.select(max(0.0, wait)):
                _step(sel, key, events, on_done)
            if now - checked > 0.1:
                _expire(sel, timeout, on_done)
                checked = now
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


def _step(sel, key, events, on_done) -> None:
    """Advance one exchange: send, read, or finish (answered or failed)."""
    sock, ex = key.fileobj, key.data
    try:
        if events & selectors.EVENT_WRITE:
            ex.out += sock.send(ex.request[ex.out:])
            if ex.out == len(ex.request):
                sel.modify(sock, selectors.EVENT_READ, ex)
            return
        chunk = sock.recv(65536)
        if chunk:
            ex.chunks.append(chunk)
            return
        status, body = parse_response(b"".join(ex.chunks))
        result = (status, body)
    except (OSError, ValueError) as exc:
        result = (None, exc)
    sel.unregister(sock)
    sock.close()
    on_done(ex.tag, ex.due, ex.sent, time.monotonic(), *result)


def _expire(sel, timeout, on_done) -> None:
    """Fail exchanges that have waited ``timeout`` seconds since they were sent."""
    now = time.monotonic()
    for key in list(sel.get_map().values()):
        ex = key.data
        if now - ex.sent > timeout:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            on_done(ex.tag, ex.due, ex.sent, now, None, TimeoutError("no response"))
