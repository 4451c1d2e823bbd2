"""Drive a running cbserve with simulated users over HTTP, and audit its log.

:func:`drive` plays an environment's rounds against one loop: rank, then the reward
``delay`` rounds later (a ``missing`` share is never sent, as with users who leave
without a trace; the service gives those the loop's default reward when their
window closes). :func:`check_log` then reads the loop's Redis log and confirms
every decision the client received was logged with the same action and propensity.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass

from bandits import dsjson
from bandits.environments import Trajectory
from bandits.environments.run import is_missing

from ..store import LoopLog


class HttpError(RuntimeError):
    """A response other than the one expected; carries status and JSON body."""

    def __init__(self, method, path, status, body):
        super().__init__(f"{method} {path}: HTTP {status} {body}")
        self.status, self.body = status, body


class JsonClient:
    """A keep-alive JSON client on one connection (not thread-safe)."""

    def __init__(self, url: str, timeout: float = 30.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--url: expected http://host:port, got {url!r}")
        self.base = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple:
        """``(status, JSON body)``; reconnects once if the server closed the connection."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            try:
                self.conn.request(method, self.base + path, data, headers)
                res = self.conn.getresponse()
                raw = res.read()
                return res.status, json.loads(raw) if raw else None
            except (ConnectionError, http.client.RemoteDisconnected):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """The JSON body of a 200 response; anything else raises :class:`HttpError`."""
        status, data = self.request(method, path, body)
        if status != 200:
            raise HttpError(method, path, status, data)
        return data

    def wait_healthy(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                self.conn.close()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no healthy service at {self.conn.host}:{self.conn.port}")
            time.sleep(0.1)


def drive(client: JsonClient, loop: str, env, rounds: int, *, delay: int = 0, missing: float = 0.0,
          tag: str | None = None, progress=None) -> Trajectory:
    """Play ``rounds`` rounds of ``env`` against ``loop``; returns what happened.

    A loop with fixed actions is sent no ``actions`` (its configured ones are used and
    must be the environment's); otherwise each round's candidates are sent.
    ``tag`` prefixes the event ids (default: the loop and the current time, so runs
    against the same service never collide).
    """
    info = client.call("GET", f"/v1/loops/{loop}")
    fixed = info.get("actions")
    if fixed and sorted(fixed) != sorted(a["id"] for a in env.actions or []):
        raise ValueError(f"loop {loop!r} has actions {fixed}; the environment has "
                         f"{[a['id'] for a in env.actions or []]}")
    tag = tag or f"{loop}-{int(time.time() * 1000)}"
    traj, pending = Trajectory(f"{loop} ({info['policy']['type']})"), deque()
    for t in range(rounds):
        rnd = env.round(t)
        body = {"context": rnd.context, "event_id": f"{tag}-{t}"}
        if not fixed:
            body["actions"] = rnd.actions
        out = client.call("POST", f"/v1/loops/{loop}/rank", body)
        k = rnd.ids.index(out["chosen"])
        reward = rnd.reward(k)
        gone = is_missing(env, t, missing)
        traj.record(rnd, k, out["probability"], float("nan") if gone else reward, out["event_id"])
        if not gone:
            pending.append((t + delay, out["event_id"], reward))
        _send_due(client, loop, pending, t)
        if progress is not None:
            progress(1)
    _send_due(client, loop, pending, None)
    return traj


def _send_due(client, loop, pending, t):
    while pending and (t is None or pending[0][0] <= t):
        _, event_id, reward = pending.popleft()
        client.call("POST", f"/v1/loops/{loop}/events/{event_id}/reward", {"value": reward})


@dataclass
class LogCheck:
    """Decisions the client received, against the loop's log."""

    checked: int = 0
    missing: int = 0
    mismatched: int = 0

    @property
    def ok(self) -> bool:
        return self.checked > 0 and self.missing == 0 and self.mismatched == 0

    def __str__(self):
        return (f"{self.checked - self.missing - self.mismatched}/{self.checked} decisions in the "
                f"log with the same action and propensity ({self.missing} missing, "
                f"{self.mismatched} different)")


def check_log(redis_client, loop: str, traj: Trajectory, since_ms: int = 0) -> LogCheck:
    """Compare every decision of ``traj`` with the loop's Redis log (from ``since_ms``)."""
    got = {e: (a, p) for e, a, p in zip(traj.event_ids, traj.chosen, traj.probability)}
    return check_decisions(redis_client, loop, got, since_ms)


def check_decisions(redis_client, loop: str, got: dict, since_ms: int = 0) -> LogCheck:
    """Compare ``{event id: (chosen action id, probability)}``, as clients received
    them, with the loop's Redis log (from ``since_ms``)."""
    check = LogCheck(checked=len(got))
    found = set()
    for _, event in LoopLog(redis_client, loop).scan_log(f"{since_ms}-0"):
        mine = got.get(event["EventId"])
        if mine is None:
            continue
        found.add(event["EventId"])
        index, prob = dsjson.chosen(event)
        if (event["ActionIds"][index], prob) != mine:
            check.mismatched += 1
    check.missing = len(got) - len(found)
    return check
