"""Reading one loop from Redis: its decision log, joined rewards, models and counters.

:class:`LoopLog` needs only the loop's name, so an export or an offline evaluation reads
a loop without its configuration. Redis errors become :class:`~service.errors.StoreError`.
"""
from __future__ import annotations

import redis

from bandits import dsjson

from . import keys
from .client import REDIS_ERRORS, mapped, store_error
from .stats import parse_stats

#: Stream entries read per round trip.
PAGE = 2000


def stream_entries(client: redis.Redis, key: str, start: str = "-", count: int = PAGE):
    """Yield ``(entry id, fields)`` of a stream from ``start`` on, ``count`` per round
    trip. Redis errors propagate as raised by redis-py (callers map them)."""
    while True:
        rows = client.xrange(key, start, "+", count=count)
        yield from rows
        if len(rows) < count:
            return
        start = "(" + rows[-1][0].decode()


def joined_rewards(entries) -> dict:
    """``{event id: (reward, kind)}`` from entries of a loop's joined stream; a slot of a
    multi-slot event is keyed ``(event id, slot id)``."""
    out: dict = {}
    for _, f in entries:
        slot = f.get(b"sl")
        key = f[b"e"].decode() if slot is None else (f[b"e"].decode(), slot.decode())
        out[key] = (float(f[b"r"]), f[b"k"].decode())
    return out


class LoopLog:
    """The read side of one loop: ``LoopLog(client, name)``."""

    def __init__(self, client: redis.Redis, name: str):
        self.r, self.name = client, name

    def _entries(self, key: str, start: str = "-"):
        """:func:`stream_entries` with Redis errors mapped to :class:`StoreError`."""
        try:
            yield from stream_entries(self.r, key, start)
        except REDIS_ERRORS as exc:
            raise store_error(exc) from exc

    @mapped
    def exists(self) -> bool:
        """Whether the loop has a decision log in this Redis."""
        return bool(self.r.exists(keys.log(self.name)))

    def raw_log(self, start: str = "-"):
        """Yield ``(entry id, DSJSON bytes or None)`` of the decision log from ``start`` on
        (None: an entry without the ``j`` field, written by hand)."""
        for sid, fields in self._entries(keys.log(self.name), start):
            yield sid.decode(), fields.get(b"j")

    def scan_log(self, start: str = "-"):
        """Yield ``(entry id, DSJSON dict)`` of the decision log from ``start`` on."""
        for sid, fields in self._entries(keys.log(self.name), start):
            yield sid.decode(), dsjson.loads(fields[b"j"])

    @mapped
    def decisions(self, ids: list) -> list:
        """DSJSON dicts for log entry ids (``None`` where the entry was trimmed)."""
        pipe = self.r.pipeline(transaction=False)
        for sid in ids:
            pipe.xrange(keys.log(self.name), sid, sid, count=1)
        return [dsjson.loads(rows[0][1][b"j"]) if rows else None for rows in pipe.execute()]

    @mapped
    def recent_decisions(self, count: int) -> list:
        """The last ``count`` decisions of the log as DSJSON dicts, oldest first (what
        the pre-deployment checks of :mod:`service.checks` decide on); entries that
        hold no JSON object are left out."""
        out = []
        for _, fields in reversed(self.r.xrevrange(keys.log(self.name), count=count)):
            try:
                event = dsjson.loads(fields.get(b"j") or b"null")
            except ValueError:  # orjson.JSONDecodeError: an entry written by hand
                continue
            if isinstance(event, dict):
                out.append(event)
        return out

    def rewards(self) -> dict:
        """``{event id: (reward, kind)}`` of every joined event still retained."""
        return joined_rewards(self._entries(keys.joined(self.name)))

    def ended(self) -> dict:
        """``{(session id, episode id): steps}`` of every ended episode still retained."""
        return {(f[b"id"].decode(), f[b"ep"].decode()): int(f[b"n"])
                for _, f in self._entries(keys.ends(self.name))}

    @mapped
    def model_meta(self) -> dict:
        """Metadata of the current version (``{}`` before the first publication)."""
        raw = self.r.hgetall(keys.model(self.name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    @mapped
    def model_version(self) -> int:
        v = self.r.hget(keys.model(self.name), "version")
        return int(v) if v else 0

    @mapped
    def model_bytes(self, version: int) -> bytes | None:
        """The snapshot of a published version (``None`` once dropped from the history)."""
        return self.r.get(keys.model_version(self.name, version))

    @mapped
    def stats(self) -> dict:
        """The loop's counters (:mod:`service.store.stats`): counts as ints, sums as floats."""
        return parse_stats(self.r.hgetall(keys.stats(self.name)))
