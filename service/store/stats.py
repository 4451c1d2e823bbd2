"""The counters of a loop (its ``stats`` hash), named here and nowhere else.

The Lua scripts (:mod:`service.store.lua`) and the learner write them; ``GET
/v1/loops/<loop>`` reports every one, ``/metrics`` the counts that only grow (a sum of
rewards may fall). The rank latency histogram lives in the same hash, one field per
bucket of :data:`LATENCY_BUCKETS`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Counter:
    """One field of the stats hash: what it counts, and whether ``/metrics`` exports it
    (as ``cbserve_<name>``, a Prometheus counter)."""

    help: str
    metric: bool = True


#: Every counter of a loop, in the order ``GET /v1/loops/<loop>`` lists them.
COUNTERS = {
    "decisions": Counter("Decisions logged"),
    "deferred": Counter("Deferred decisions logged", metric=False),
    "activated": Counter("Deferred decisions activated", metric=False),
    "rewards": Counter("Rewards received from callers"),
    "joined": Counter("Events joined and handed to the learner"),
    "defaults": Counter("Events joined with the loop's default reward"),
    "slot_joins": Counter("Slots of multi-slot events joined (each slot's outcome is learned)"),
    "expired": Counter("Deferred events never activated within the reward window"),
    "learned": Counter("Events learned into a published model"),
    "reward_sum": Counter("Sum of the joined rewards", metric=False),
    "lost_decisions": Counter("Joined events whose decision had left the log (retention too short)"),
    "not_learned": Counter("Joined events acknowledged unlearned while the loop was pinned"),
    "unlearnable": Counter("Joined events the policy refused to learn (skipped; see the learner's log)"),
    "sessions": Counter("Sessions started", metric=False),
    "sessions_ended": Counter("Sessions ended", metric=False),
}
#: Stats fields that are sums of values (HINCRBYFLOAT); every other field is a count.
SUM_FIELDS = frozenset({"reward_sum", "latency_sum"})
#: Latency histogram bucket bounds (seconds) of ``/metrics``.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


def latency_field(seconds: float) -> str:
    """Stats field of the histogram bucket ``seconds`` falls in.

    >>> latency_field(0.0015), latency_field(3.0)
    ('lat_le_0.002', 'lat_le_inf')
    """
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return f"lat_le_{bound:g}"
    return "lat_le_inf"


def parse_stats(raw: dict) -> dict:
    """An ``HGETALL`` of the stats hash: counts as ints, sums (:data:`SUM_FIELDS`) as floats.

    >>> parse_stats({b"decisions": b"3", b"reward_sum": b"1.5"})
    {'decisions': 3, 'reward_sum': 1.5}
    """
    return {name: float(v) if name in SUM_FIELDS else int(v)
            for name, v in ((k.decode(), v) for k, v in raw.items())}


def summary(stats: dict) -> dict:
    """Every counter of :data:`COUNTERS`, 0 for those never written."""
    return {name: stats.get(name, 0.0 if name in SUM_FIELDS else 0) for name in COUNTERS}
