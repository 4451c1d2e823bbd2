"""``cbserve models``: a loop's model versions, over the HTTP API of a running service.

``list``, ``show V``, ``snapshot V -o FILE``, ``upload FILE``, ``deploy V [--pin]
[--force]``, ``promote CHALLENGER``, ``challengers`` and ``audit`` call the model routes
of :mod:`service.api.versions` and :mod:`service.api.challengers` for ``--loop``. The service
is ``--url``, else ``$CBSERVE_URL``, else ``http://127.0.0.1:8080`` (where ``cbserve
serve`` listens by default); the API key is ``$CBSERVE_API_KEY``, sent as
``Authorization: Bearer <key>``, and never an option (a command line is visible to
every user of the host). The routes need a key of role ``admin``.

Answers are printed as tables and summaries; ``--json`` prints the service's JSON as it
came. A refusal of the service (4xx, 5xx) is one line on stderr naming the route, its
status and the service's message, and exit status 1, as is a service that cannot be
reached; a local problem (a file that cannot be read or written) exits 2.

What it prints is :mod:`service.models_format`'s (pure: an answer in, text out).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from .errors import CommandError
from .models_format import (format_audit, format_challengers, format_deploy, format_entry,
                            format_fields, format_list, format_upload)

ENV_URL, ENV_KEY = "CBSERVE_URL", "CBSERVE_API_KEY"
#: ``cbserve serve``'s default ``--host`` and ``--port``.
DEFAULT_URL = "http://127.0.0.1:8080"
#: Seconds to wait for an answer (a deploy or an upload runs the pre-deployment checks).
TIMEOUT_S = 60.0


class RemoteError(Exception):
    """The service refused a request, or could not be reached; ``message`` says which."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message, self.details = message, details


class Client:
    """Requests to one service with one API key (``None``: send none)."""

    def __init__(self, url: str, key: str | None, timeout: float = TIMEOUT_S):
        self.url, self.key, self.timeout = url.rstrip("/"), key, timeout

    def call(self, method: str, path: str, body: bytes | None = None,
             content_type: str | None = None) -> bytes:
        """The answer's body; :class:`RemoteError` for any status but 2xx."""
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        route = f"{method} {path.split('?')[0]}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                return res.read()
        except urllib.error.HTTPError as exc:
            raise refusal(route, exc.code, exc.read(), bool(self.key)) from exc
        except urllib.error.URLError as exc:
            raise RemoteError(unreachable(self.url, exc.reason, self.timeout)) from exc
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise RemoteError(unreachable(self.url, exc, self.timeout)) from exc

    def json(self, method: str, path: str, payload: dict | None = None, body: bytes | None = None,
             content_type: str = "application/json") -> tuple:
        """``(parsed answer, its text)`` of a request with a JSON answer (``payload`` its
        JSON body, else ``body`` of ``content_type``)."""
        if payload is not None:
            body = json.dumps(payload).encode()
        text = self.call(method, path, body, None if body is None else content_type).decode()
        try:
            return json.loads(text), text
        except ValueError as exc:
            raise RemoteError(f"{method} {path.split('?')[0]}: the answer is not JSON "
                              f"(is {self.url} a cbserve service?)") from exc


def unreachable(url: str, reason, timeout: float) -> str:
    """Why ``url`` gave no answer, naming it."""
    if isinstance(reason, ConnectionRefusedError):
        return (f"cannot connect to {url}: connection refused (is cbserve running there? "
                f"give --url or set {ENV_URL})")
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"{url} did not answer within {timeout:g} s"
    return f"cannot reach {url}: {getattr(reason, 'strerror', None) or reason}"


def refusal(route: str, status: int, body: bytes, keyed: bool) -> RemoteError:
    """The one line (and any ``figures``) of a refused request, from the service's JSON."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        text = body.decode("utf-8", "replace").strip()
        return RemoteError(f"{route}: {status} {' '.join(text.split())[:200] or '(no body)'}")
    error = answer.get("error")
    if isinstance(error, dict):
        code, message = error.get("code", ""), error.get("message", "")
    else:
        code, message = (error if isinstance(error, str) else ""), answer.get("message", "")
    line = f"{route}: {status} {code}: {message or json.dumps(answer)}".replace(" : ", ": ")
    if status == 401:
        line += (f" (set {ENV_KEY} to a key of role admin)" if not keyed else
                 f" ({ENV_KEY} matches no key of this service)")
    elif status == 403:
        line += f" (these routes need a key of role admin for the loop, in {ENV_KEY})"
    elif status == 409 and (code == "gate_refused" or "force: true" in message):
        line += " (--force overrides the gate; the audit records it)"
    where = error if isinstance(error, dict) else answer
    shown = {k: where[k] for k in ("figures", "gate") if isinstance(where.get(k), dict)}
    if "gate" in shown:  # its reasons are in the message
        shown["gate"] = {k: v for k, v in shown["gate"].items() if k not in ("passes", "reasons")}
    return RemoteError(line, format_fields(shown, "  "))


def _path(args, tail: str = "") -> str:
    return f"/v1/loops/{urllib.parse.quote(args.loop, safe='')}{tail}"


def _show(args, client, method, tail, fmt, payload=None) -> str:
    answer, text = client.json(method, _path(args, tail), payload)
    return text.rstrip("\n") if args.json else fmt(answer)


def run(args, client: Client) -> str:
    """The text to print for ``args`` (:class:`RemoteError` when the service refuses)."""
    sub, loop = args.models_command, args.loop
    if sub == "list":
        return _show(args, client, "GET", "/models", lambda a: format_list(a, loop))
    if sub == "show":
        return _show(args, client, "GET", f"/models/{args.version}", format_entry)
    if sub == "snapshot":
        blob = client.call("GET", _path(args, f"/models/{args.version}/snapshot"))
        return _write(args.output, blob, f"version {args.version} of loop {loop}")
    if sub == "upload":
        blob = _read(args.file)
        query = f"?reason={urllib.parse.quote(args.reason)}" if args.reason else ""
        entry, text = client.json("POST", _path(args, f"/models{query}"), body=blob,
                                  content_type="application/octet-stream")
        return text.rstrip("\n") if args.json else format_upload(entry, args.file, loop)
    if sub == "deploy":
        payload = {"version": args.version, "learn": not args.pin, "force": args.force, "reason": args.reason or ""}
        return _show(args, client, "POST", "/deploy", lambda a: format_deploy(a, loop), payload)
    if sub == "promote":
        payload = {"challenger": args.challenger, "reason": args.reason or "", "force": args.force}
        return _show(args, client, "POST", "/promote", lambda a: format_deploy(a, loop), payload)
    if sub == "challengers":
        return _show(args, client, "GET", "/challengers", lambda a: format_challengers(a, loop))
    return _show(args, client, "GET", f"/audit?count={args.count}", format_audit)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise CommandError(f"FILE: cannot read {path!r}: {exc.strerror}") from exc


def _write(path: str, blob: bytes, what: str) -> str:
    if path == "-":
        sys.stdout.buffer.write(blob)
        sys.stdout.buffer.flush()
        return ""
    try:
        with open(path, "wb") as fh:
            fh.write(blob)
    except OSError as exc:
        raise CommandError(f"-o/--output: cannot write {path!r}: {exc.strerror}") from exc
    return f"wrote {len(blob)} bytes ({what}) to {path}"


def cmd_models(args) -> int:
    """Run ``cbserve models``: 0, 1 (the service refused or cannot be reached) or 2."""
    url = args.url or os.environ.get(ENV_URL) or DEFAULT_URL
    client = Client(url, os.environ.get(ENV_KEY) or None)
    try:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            where = "--url" if args.url else ENV_URL
            raise CommandError(f"{where}: must be an http:// or https:// URL, got {url!r}")
        text = run(args, client)
    except RemoteError as exc:
        print(f"cbserve: {exc.message}", file=sys.stderr)
        if exc.details:
            print(exc.details, file=sys.stderr)
        return 1
    except CommandError as exc:
        print(f"cbserve: {exc.message}", file=sys.stderr)
        return 2
    if text:
        print(text)
    return 0


def add_models_parser(sub, formatter) -> None:
    """``cbserve models <sub>`` on the ``cbserve`` parser's subcommands ``sub``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--loop", required=True, help="the loop")
    common.add_argument("--url", help=f"the service (default: ${ENV_URL}, else {DEFAULT_URL}); "
                                      f"the API key is ${ENV_KEY}")
    common.add_argument("--json", action="store_true", help="print the service's JSON as it came")
    text = "a running service's model versions over HTTP: list, deploy, roll back, pin, promote"
    m = sub.add_parser("models", help=text, description=text, formatter_class=formatter)
    verbs = m.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")

    def verb(name, text):
        return verbs.add_parser(name, parents=[common], help=text, description=text, formatter_class=formatter)

    verb("list", "the loop's versions, the serving one marked")
    verb("show", "one version's registry entry").add_argument("version", type=int, metavar="V")
    s = verb("snapshot", "download a version's snapshot")
    s.add_argument("version", type=int, metavar="V")
    s.add_argument("-o", "--output", required=True, help="file to write ('-': standard output)")
    u = verb("upload", "register a snapshot file as a new version (it serves once deployed with --force)")
    u.add_argument("file", metavar="FILE", help="a snapshot: policy.to_bytes(), cbserve train's output")
    d = verb("deploy", "serve version V (roll back, resume); the learner continues from it unless --pin")
    d.add_argument("version", type=int, metavar="V")
    d.add_argument("--pin", action="store_true", help="serve V and learn nothing (learn: false)")
    p = verb("promote", "serve a challenger's version, if the gate agrees")
    p.add_argument("challenger", metavar="CHALLENGER", help="the challenger's name")
    for parser, what in ((d, "deploy a version that never served"), (p, "promote past the gate")):
        parser.add_argument("--force", action="store_true", help=f"{what} (audited)")
    for parser in (u, d, p):
        parser.add_argument("--reason", help="why, for the audit")
    verb("challengers", "the loop's challengers and their figures")
    verb("audit", "deploys, pins, refusals and uploads, newest first").add_argument(
        "--count", type=int, default=20, help="entries to show (1 to 1000)")

