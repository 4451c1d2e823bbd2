"""Reading a request body off the connection, bounded in time and in size.

The WSGI servers cbserve runs under hand the app the client's socket (werkzeug's, for
``cbserve serve``, as ``werkzeug.socket``; gunicorn's as ``gunicorn.socket``).
:func:`bound_reads` gives it ``service.read_timeout``, so a client that announces more
body than it sends gets a 408 instead of holding the worker. A streamed body
(``Transfer-Encoding: chunked``) has no Content-Length to check beforehand: it is read
up to ``service.max_body_bytes`` and refused with a 413 if more follows.
"""
from __future__ import annotations

from flask import request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from ..errors import RequestTimeout

#: WSGI environ keys under which servers pass the client's socket.
SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")


def bound_reads(seconds: float):
    """A ``before_request`` function giving the client's socket a timeout of ``seconds``
    (for every read and write of this request: the body, and the answer)."""
    def set_timeout():
        environ = request.environ
        for key in SOCKET_KEYS:
            sock = environ.get(key)
            if sock is not None:
                if sock.gettimeout() != seconds:
                    sock.settimeout(seconds)
                return
    return set_timeout


def request_handler(seconds: float):
    """werkzeug's request handler with a socket timeout of ``seconds`` from the first
    byte, bounding the request line and headers too (``make_server(...,
    request_handler=request_handler(config.read_timeout))``)."""
    from werkzeug.serving import WSGIRequestHandler

    return type("TimedRequestHandler", (WSGIRequestHandler,), {"timeout": seconds})


def read_body(limit: int, timeout: float) -> bytes:
    """The body: 408 when it stops arriving for ``timeout`` seconds, 413 (as for a
    Content-Length over the limit) when a streamed body is longer than ``limit``."""
    try:
        raw = request.get_data(cache=False)
        if len(raw) >= limit and request.content_length is None and _more_follows():
            raise RequestEntityTooLarge()
    except ClientDisconnected as exc:
        if isinstance(exc.__context__, TimeoutError):
            raise _timed_out(timeout) from exc.__context__
        raise
    except TimeoutError as exc:
        raise _timed_out(timeout) from exc
    return raw


def _more_follows() -> bool:
    """Whether the server's input stream holds more than what was read (only asked of a
    stream the server ends itself, e.g. a dechunked one, where reading cannot hang)."""
    environ = request.environ
    return bool(environ.get("wsgi.input_terminated") and environ["wsgi.input"].read(1))


def _timed_out(timeout: float) -> RequestTimeout:
    announced = request.content_length
    size = f" of {announced} bytes" if announced is not None else ""
    return RequestTimeout(f"body{size} not received within service.read_timeout = {timeout:g} s")
