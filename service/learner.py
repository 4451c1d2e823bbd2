"""The learner: joined events in, versioned model snapshots out.

For each loop it closes expired events (default reward), reads joined events with its
consumer group (:mod:`service.store.learning`), learns them, and publishes a snapshot when
``publish_events`` events are unpublished or ``publish_seconds`` have passed since the
first of them. Exactly once: a batch is acknowledged in the same script that
publishes the snapshot holding it (:meth:`service.store.registry.Registry.publish`), so
after a crash the unacknowledged (pending) entries are exactly the ones no published
model has learned; they are read again and learned once. The snapshot also records the last stream id it holds, and older entries are
skipped. One learner per loop holds a lock (``service.learner_lock`` seconds, renewed
every cycle); a second learner waits until it is free. A publication is a new version
of the loop's registry whose parent is the version the learner started from; a deploy
moves that start, and a pinned loop's events are acknowledged unlearned. The drift
detectors (:mod:`service.drift_learner`) see the events learned, and their state is
published with the model holding them.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid

import redis

from bandits import BanditError, load_policy
from bandits.dsjson_slots import feedback

from .challenger_learner import LoopChallengers
from .config import Config, LoopConfig
from .drift_learner import LoopDrift
from .errors import StoreError
from .models import servable, spec_text
from .store import LearnerStore
from .store.learning import after, slot_of
from .threads import one_blas_thread
from .store.registry import Registry

log = logging.getLogger(__name__)

#: Joined entries read per round trip.
BATCH = 500


class LoopLearner:
    """Learner of one loop. ``step()`` does one cycle; :class:`Learner` runs many loops."""

    def __init__(self, client: redis.Redis, loop: LoopConfig, config: Config):
        self.loop, self.config = loop, config
        self.store = LearnerStore(client, loop)
        self.registry = Registry(client, loop.name, config.models_keep)
        self.name, self.lock_s = loop.name, config.learner_lock
        self._token = uuid.uuid4().hex
        self._holding = False
        self._unacked: list = []   # joined stream ids learned but not yet published
        self._first_unpublished = None
        self._pending_done = False
        self._pinned = False
        self.policy = None
        self.challengers = LoopChallengers(self) if loop.challengers else None
        self.drift = LoopDrift(self)

    # -- state ------------------------------------------------------------------------
    def _load(self) -> None:
        """Start from the published model (or a fresh one) and the group's pending list."""
        self.store.join_group()
        meta = self.store.model_meta()
        self.version = int(meta.get("version", 0))
        self.last_id = meta.get("last_id", "0-0")
        blob = self.store.model_bytes(self.version) if self.version else None
        entry = self.registry.entry(self.version) if self.version else None
        if blob is not None and meta.get("spec") in servable(self.loop):
            self.policy, self._parent = load_policy(blob), self.version
            self._events = int(entry.get("events_learned") or 0) if entry else 0
            self._spec = meta["spec"]
        else:
            if blob is not None:
                log.warning("loop %s: policy spec changed; learning a new model from the next "
                            "version", self.name)
            self.policy, self._parent, self._events = self.loop.new_policy(), None, 0
            self._spec = spec_text(self.loop)
        self._unacked, self._first_unpublished, self._pending_done = [], None, False
        self._pending_from = "0"  # pending entries are paged from here (never re-read)
        self._learned = 0  # events in _unacked that reached the policy
        if self.challengers is not None:
            self.challengers.load()
        self.drift.load()

    def _lock(self) -> bool:
        held = self.store.hold_lock(self._token, self.lock_s)
        if held and not self._holding:
            self._load()  # another learner may have published while we waited
        self._holding = held
        return held

    def restart(self) -> None:
        """After a failed cycle: start again from what Redis holds once it answers (the
        published model, then the pending entries), so events read but never published
        are learned again and none twice."""
        self._holding = False

    # -- one cycle --------------------------------------------------------------------
    def step(self) -> int:
        """Sweep, learn what is joined, publish if due. Returns events learned."""
        if not self._lock():
            return 0
        self.store.sweep()
        if self.registry.serving().get("learn") == "0":
            skipped = self._skip_pinned()
            if self.challengers is not None:  # they learn on; a pin is never overridden
                skipped += self.challengers.step(promote=False)[0]
            return skipped
        if self._pinned:  # a deploy with learn = true: continue from the head it set
            self._pinned = False
            self._load()
        entries = []
        if not self._pending_done:  # entries a previous run read but never published
            entries = self.store.read_joined(self._pending_from, BATCH)
            self._pending_done = len(entries) < BATCH
            if entries:  # the next page starts after these, learned but unpublished
                self._pending_from = entries[-1][0].decode()
        if not entries:
            entries = self.store.read_joined(">", BATCH)
        learned = self._learn(entries)
        self._maybe_publish()
        if self.challengers is not None:
            evaluated, promoted = self.challengers.step()
            learned += evaluated
            if promoted is not None:  # serve and learn on from the promoted version
                self._load()
        return learned

    def _skip_pinned(self) -> int:
        """While the loop is pinned: acknowledge joined events without learning them.
        The champion learns nothing from them (a pin freezes it); the decision log keeps
        them for offline evaluation and training. What was learned since the last
        version is dropped with them; a later deploy with learn = true starts from the
        version it deploys."""
        if not self._pinned:
            self._pinned = True
            log.info("loop %s: pinned; joined events are acknowledged, not learned", self.name)
        ids = self._unacked
        self._unacked, self._first_unpublished, self._learned = [], None, 0
        entries = self.store.read_joined("0", BATCH) or self.store.read_joined(">", BATCH)
        ids = ids + [sid.decode() for sid, _ in entries]
        if ids:
            self.store.ack(ids)
            self.store.count("not_learned", len(ids))
        return len(ids)

    def _learn(self, entries) -> int:
        fresh, skipped = after(entries, self.last_id)
        if skipped:  # learned by a published model already; acknowledge only
            self.store.ack(skipped)
        if not fresh:
            return 0
        events = self.store.decisions([f[b"s"].decode() for _, f in fresh])
        found = [(ev, float(f[b"r"]), slot_of(f)) for ev, (_, f) in zip(events, fresh) if ev]
        if len(found) < len(fresh):
            self.store.count("lost_decisions", len(fresh) - len(found))
            log.warning("loop %s: %d joined events had left the log (retention too short?)",
                        self.name, len(fresh) - len(found))
        batch = self._learn_batch(found)
        self.drift.observe(fb for _, fb in batch)
        self._unacked.extend(sid for sid, _ in fresh)
        self.last_id = fresh[-1][0]
        if self._first_unpublished is None:
            self._first_unpublished = time.monotonic()
        self._learned += len(batch)
        return len(batch)

    def _learn_batch(self, found) -> list:
        """Learn ``[(event, reward)]``; returns what was learned. An event the policy
        refuses (a log written before a validation rule existed, a hand-made entry) is
        skipped, counted as ``unlearnable`` and logged, instead of stopping the learner
        on it forever. Built-in policies validate a whole batch before learning any of
        it, so learning the rest one by one after a refusal learns none of them twice
        (only a failure inside Vowpal Wabbit itself, mid-batch, could)."""
        batch, bad = [], []
        for event, reward, slot in found:
            try:
                batch.append((event.get("EventId"), feedback(event, reward, slot)))
            except BanditError as exc:
                bad.append((event.get("EventId"), exc))
        try:
            if batch:
                self.policy.learn([fb for _, fb in batch])
        except BanditError:
            kept = []
            for event_id, fb in batch:
                try:
                    self.policy.learn([fb])
                    kept.append((event_id, fb))
                except BanditError as exc:
                    bad.append((event_id, exc))
            batch = kept
        if bad:
            self.store.count("unlearnable", len(bad))
            for event_id, exc in bad[:3]:
                log.warning("loop %s: event %s skipped, the policy refuses it: %s",
                            self.name, event_id, exc)
        return batch

    def _maybe_publish(self, force: bool = False) -> None:
        if not self._unacked:
            return
        waited = time.monotonic() - self._first_unpublished
        if force or len(self._unacked) >= self.config.publish_events or waited >= self.config.publish_seconds:
            self.publish()

    def publish(self) -> int:
        """Publish the current policy as the next version, acknowledging its events
        (nothing to do when no event was learned since the last version)."""
        if not self._unacked:
            return self.version
        blob, now = self.policy.to_bytes(), time.time()
        name, spec = getattr(self.policy, "name", type(self.policy).__name__), self._spec
        params = self.policy.get_params() if hasattr(self.policy, "get_params") else {}
        entry = {"created": now, "parent": self._parent, "source": "learner",
                 "events_learned": self._events + self._learned,
                 "policy": {"name": name, "params": params}, "spec": spec, "bytes": len(blob)}
        head = {"last_id": self.last_id, "spec": spec, "policy": name, "created": repr(now),
                "bytes": len(blob)}
        status, version = self.registry.publish(self.version, blob, entry, head, self._unacked,
                                                self._learned, self.drift.fields())
        if status != "ok":  # a deploy moved the head, or a pin: start again from Redis
            log.info("loop %s: not publishing (%s); reloading", self.name,
                     "pinned" if status == "pinned" else f"version {version} deployed")
            self._load()
            return self.version
        self.version, self._parent, self._events = version, version, entry["events_learned"]
        self._unacked, self._first_unpublished, self._learned = [], None, 0
        log.info("loop %s: published model version %d", self.name, version)
        if self.drift.published():  # a reset deployed a fresh version: learn on from it
            self._load()
        return self.version

    def release(self) -> None:
        """Learn what is already joined, publish it and give the lock up (clean shutdown)."""
        if self._holding:
            while self.step():
                pass
            self._maybe_publish(force=True)
            if self.challengers is not None:
                self.challengers.release()
            self.store.release_lock()
            self._holding = False


#: Seconds before the learner tries again a loop whose published model it cannot load
#: (the other loops go on learning meanwhile).
PARK_S = 30.0


class Learner:
    """Runs :class:`LoopLearner` for every configured loop until stopped."""

    def __init__(self, client: redis.Redis, config: Config):
        one_blas_thread()
        self.loops = [LoopLearner(client, loop, config) for loop in config.loops.values()]
        self.stopped = threading.Event()

    def run(self, idle_s: float = 0.05) -> None:
        """Cycle over the loops; sleep ``idle_s`` when none had anything to learn."""
        parked: dict = {}  # loop name -> when to try again
        try:
            while not self.stopped.is_set():
                busy = 0
                for loop in self.loops:
                    if parked.get(loop.name, 0.0) > time.monotonic():
                        continue
                    try:
                        busy += loop.step()
                        parked.pop(loop.name, None)
                    except StoreError as exc:
                        log.error("loop %s: Redis failed (%s); retrying", loop.name, exc)
                        loop.restart()
                        self.stopped.wait(1.0)
                    except BanditError as exc:  # its published model cannot be loaded
                        if loop.name not in parked:
                            log.error("loop %s: not learning, retrying every %g s: %s",
                                      loop.name, PARK_S, exc)
                        parked[loop.name] = time.monotonic() + PARK_S
                        loop.restart()
                if not busy:
                    self.stopped.wait(idle_s)
        finally:
            for loop in self.loops:
                try:
                    loop.release()
                except StoreError:
                    log.exception("loop %s: could not publish on shutdown", loop.name)

    def stop(self) -> None:
        self.stopped.set()
