"""Reading a loop's health from Redis in one pipelined round trip.

The per-minute buckets of two windows (:func:`~service.store.keys.bucket`), the
learner's lag on the joined stream, its head, the serving pointer, the drift hash and
whether the decision log and counters exist. Redis errors become
:class:`~service.errors.StoreError`; the figures are :mod:`service.health`'s.
"""
from __future__ import annotations

import json
import time

import redis

from .. import health
from ..config import LoopConfig
from . import keys, lua
from .client import mapped

#: Entries counted at most when Redis (before 7) has no XINFO ``lag`` to tell the
#: learner's lag: the figure is exact up to this many.
LAG_COUNT_MAX = 100_000


class HealthStore:
    """``HealthStore(client, loop).report(window_s)``: a loop's health report."""

    def __init__(self, client: redis.Redis, loop: LoopConfig):
        self.r, self.loop, self.name = client, loop, loop.name

    def report(self, window_s: int, now: float | None = None) -> dict:
        """:func:`service.health.report` over the last ``window_s`` seconds."""
        end, buckets, state = self.read(window_s, now)
        return health.report(self.name, window_s, end, buckets, state, self.loop.health)

    @mapped
    def read(self, window_s: int, now: float | None = None) -> tuple:
        """``(end minute, buckets, state)``: the parsed buckets of the previous window and
        this one (2 · window minutes, oldest first, the last the current minute) and the
        ``state`` :func:`service.health.report` takes."""
        now = time.time() if now is None else now
        end, n = int(now) // 60, window_s // 60
        pipe, name = self.r.pipeline(transaction=False), self.name
        for minute in range(end - 2 * n + 1, end + 1):
            pipe.hgetall(keys.bucket(name, minute))
        # EVAL, not a registered script: a pipeline (a cluster's too, which has no
        # ``eval`` method) then needs no SCRIPT LOAD on any node first
        pipe.execute_command("EVAL", lua.LEARNER_LAG, 1, keys.joined(name), keys.LEARNER_GROUP,
                             LAG_COUNT_MAX)
        pipe.hgetall(keys.model(name))
        pipe.hgetall(keys.serving(name))
        pipe.hgetall(keys.drift(name))
        pipe.exists(keys.log(name))
        pipe.exists(keys.stats(name))
        *raw, (pending, lag), head, pointer, drift, has_log, has_stats = pipe.execute()
        buckets = [health.parse_bucket(b) for b in raw]
        head = {k.decode(): v.decode() for k, v in head.items()}
        pointer = {k.decode(): v.decode() for k, v in pointer.items()} or head
        served = any(b["d"] for b in buckets) or bool(head) or bool(pointer)
        missing = [what for what, found in (("decision log", has_log), ("counters", has_stats))
                   if served and not found]
        created = float(head["created"]) if "created" in head else None
        state = {"learner_lag": int(pending) + int(lag),
                 "staleness_s": None if created is None else max(0.0, now - created),
                 "serving_version": int(pointer.get("version", 0)),
                 "learning": pointer.get("learn") != "0",
                 "drift": parse_drift(drift), "missing": missing}
        return end, buckets, state


def parse_drift(raw: dict) -> dict:
    """The drift hash's fields, each a JSON object (a field that is not one is left out).

    >>> parse_drift({b"reward": b'{"state": "ok"}', b"context": b"oops"})
    {'reward': {'state': 'ok'}}
    """
    out = {}
    for k, v in raw.items():
        try:
            value = json.loads(v)
        except ValueError:
            continue
        if isinstance(value, dict):
            out[k.decode() if isinstance(k, bytes) else k] = value
    return out
