"""A primary of a Redis Cluster killed under load: what the callers of rank saw.

:func:`fault_run` ranks on one loop from a few threads, kills the primary serving the
loop's slot, waits for its replica to take over, starts the killed node again (it
rejoins as the new primary's replica) and runs until ranks have answered 200 again for
a while. It counts what was acknowledged, what failed (503) and what was acknowledged
but is not in the decision log afterwards (lost). Used by the cluster tests and by
``scripts/fault_cluster.py``.
"""
from __future__ import annotations

import json
import threading
import time

from ..store import connect, keys
from .redis_cluster import RedisCluster, slot_of

#: The rank body: six actions with one feature each.
BODY = {"context": {"user": {"age": 30.0, "country": "FR"}},
        "actions": [{"id": f"a{i}", "features": {"item": {"price": float(i)}}} for i in range(6)]}
#: Seconds of 200s after the last 503 that count as recovered.
SETTLE_S = 1.0


def fault_run(cluster: RedisCluster, app, loop: str, threads: int = 3, before_s: float = 0.5,
              timeout_s: float = 30.0) -> dict:
    """``{"acknowledged", "failed", "lost", "recovered_s", "promoted_s", "other"}``:
    ranks answered 200, answered 503, acknowledged but missing from the log; seconds
    from the kill to the first 200 after the last 503 (None: not recovered within
    ``timeout_s``) and to the replica serving the slot; other statuses seen."""
    slot = slot_of("{" + loop + "}")
    victim = cluster.slot_owner(slot)
    acked, failed, other, stop = [], [], [], threading.Event()

    def ranks():
        client = app.test_client()
        while not stop.is_set():
            res = client.post(f"/v1/loops/{loop}/rank", json=BODY)
            if res.status_code == 200:
                acked.append((time.monotonic(), res.get_json()["event_id"]))
            elif res.status_code == 503:
                failed.append(time.monotonic())
                time.sleep(0.02)
            else:
                other.append(res.status_code)

    workers = [threading.Thread(target=ranks, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    try:
        time.sleep(before_s)
        killed = time.monotonic()
        cluster.kill(victim)
        promoted_s = _wait_promotion(cluster, slot, victim, killed + timeout_s) - killed
        victim.start()  # back as the new primary's replica
        recovered = _wait_recovery(acked, failed, killed + timeout_s)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    client = connect(cluster.url)
    logged = {json.loads(f[b"j"])["EventId"] for _, f in client.xrange(keys.log(loop))}
    client.close()
    return {"acknowledged": len(acked), "failed": len(failed),
            "lost": sum(e not in logged for _, e in acked),
            "recovered_s": None if recovered is None else round(recovered - killed, 3),
            "promoted_s": round(promoted_s, 3), "other": sorted(set(other))}


def _wait_promotion(cluster, slot, victim, deadline) -> float:
    while time.monotonic() < deadline:
        try:
            if cluster.slot_owner(slot).port != victim.port:
                return time.monotonic()
        except RuntimeError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no replica took over slot {slot} in time")


def _wait_recovery(acked, failed, deadline) -> float | None:
    """The time of the first 200 after the last 503, once 200s have gone on for
    :data:`SETTLE_S` with no 503 (None at the deadline)."""
    while time.monotonic() < deadline:
        now = time.monotonic()
        last = failed[-1] if failed else 0.0
        if acked and acked[-1][0] > last and now - last >= SETTLE_S:
            return next(t for t, _ in acked if t > last)
        time.sleep(0.05)
    return None
