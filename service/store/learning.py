"""The learner's side of one loop in Redis: its lock, its consumer group, publication.

The learner reads the joined stream with its consumer group
(:data:`~service.store.keys.LEARNER_GROUP`) and acknowledges a batch in the same script
that publishes the model holding it (:meth:`service.store.registry.Registry.publish`),
so the pending entries are exactly the ones no published model has learned. One learner per
loop holds its lock (:func:`~service.store.keys.learner_lock`). Redis errors become
:class:`~service.errors.StoreError`.
"""
from __future__ import annotations

import redis

from ..config import LoopConfig
from . import keys, lua
from .client import mapped
from .loop import LoopStore
from .stats import COUNTERS

def after(entries: list, last_id: str) -> tuple:
    """``(fresh, skipped)`` of joined ``entries`` read from a group: ``fresh`` the
    ``(id, fields)`` after ``last_id`` (to learn), ``skipped`` the ids at or before it
    (a saved model holds them already: acknowledge only).

    >>> after([(b"5-0", {}), (b"12-1", {})], "9-3")
    ([('12-1', {})], ['5-0'])
    """
    def order(sid: str) -> tuple:
        ms, _, seq = sid.partition("-")
        return int(ms), int(seq or 0)
    last, fresh, skipped = order(last_id), [], []
    for sid, fields in entries:
        sid = sid.decode()
        if order(sid) > last:
            fresh.append((sid, fields))
        else:
            skipped.append(sid)
    return fresh, skipped


def slot_of(fields: dict) -> str | None:
    """The slot a joined entry rewards (a multi-slot event's), or None.

    >>> slot_of({b"e": b"e1", b"sl": b"top"}), slot_of({b"e": b"e1"})
    ('top', None)
    """
    slot = fields.get(b"sl")
    return None if slot is None else slot.decode()


#: Name of the learner's consumer in its group (one learner per loop reads at a time).
CONSUMER = "learner"


class LearnerStore(LoopStore):
    """Everything the learner asks of Redis for one loop (reads from :class:`LoopStore`)."""

    def __init__(self, client: redis.Redis, loop: LoopConfig):
        super().__init__(client, loop)
        self._lock_script = client.register_script(lua.LEARNER_LOCK)

    @mapped
    def hold_lock(self, token: str, seconds: float) -> bool:
        """Take or renew the loop's learner lock for ``seconds``: whether ``token`` holds it."""
        return bool(self._lock_script(keys=[keys.learner_lock(self.name)],
                                      args=[token, int(seconds * 1000)]))

    @mapped
    def release_lock(self) -> None:
        self.r.delete(keys.learner_lock(self.name))

    @mapped
    def join_group(self) -> None:
        """Create the learner's group on the joined stream (from its start) unless it exists."""
        try:
            self.r.xgroup_create(keys.joined(self.name), keys.LEARNER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @mapped
    def read_joined(self, start: str, count: int) -> list:
        """Up to ``count`` joined entries ``(entry id, fields)`` for the group: ``start``
        ``"0"`` reads again those delivered but never acknowledged, ``">"`` new ones."""
        rows = self.r.xreadgroup(keys.LEARNER_GROUP, CONSUMER, {keys.joined(self.name): start},
                                 count=count)
        return rows[0][1] if rows else []

    @mapped
    def ack(self, ids: list) -> None:
        """Acknowledge joined entries a published model holds already."""
        self.r.xack(keys.joined(self.name), keys.LEARNER_GROUP, *ids)

    @mapped
    def count(self, counter: str, n: int) -> None:
        """Add ``n`` to one of the loop's :data:`~service.store.stats.COUNTERS`."""
        if counter not in COUNTERS:
            raise ValueError(f"counter: unknown {counter!r} (allowed: {', '.join(COUNTERS)})")
        self.r.hincrby(keys.stats(self.name), counter, n)
