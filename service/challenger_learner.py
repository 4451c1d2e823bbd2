"""The challengers of one loop, run by the learner beside the champion.

Each cycle reads joined entries with the challengers' own consumer group, restores
every event's decision from the log, and for each challenger: records its pmf on the
event before learning the batch (progressive validation, :mod:`service.challengers`),
then learns the batch. Every ``publish_events`` events or ``publish_seconds`` it saves
every challenger and acknowledges the entries in one script
(:meth:`service.store.challengers.ChallengerStore.save`); entries at or before the
saved ``last_id`` are never learned twice. In ``promotion.mode = "auto"`` it then
checks the gate (at most every ``promotion.interval``) and promotes the best passing
challenger (:func:`service.promotion.promote`).
"""
from __future__ import annotations

import json
import logging
import time

import numpy as np

from bandits import BanditError, load_policy, make_policy
from bandits.dsjson_slots import feedback

from .challengers import WIDTH, RewardMeans, Window, figures, record
from .errors import ApiError
from .promotion import auto_candidate, promote, store_of
from .store.learning import after, slot_of

log = logging.getLogger(__name__)

#: Entries read per round trip.
BATCH = 500
#: The audit's key name of automatic promotions.
AUTO_KEY = "learner (auto)"


def spec_of(challenger) -> str:
    """The spec text a challenger's models carry (as :func:`service.models.spec_text`)."""
    return json.dumps({"policy": challenger.policy, "featurizer": challenger.featurizer},
                      sort_keys=True)


class LoopChallengers:
    """The challengers of one loop; ``owner`` is its :class:`service.learner.LoopLearner`."""

    def __init__(self, owner):
        self.owner, self.loop, self.config = owner, owner.loop, owner.config
        self.store = store_of(owner)
        self.size = self.loop.evaluation["window"]
        self._checked = time.monotonic()

    def load(self) -> None:
        """Start from the saved challengers (or fresh ones) and the group's pending list."""
        self.store.join_group()
        saved = self.store.load(WIDTH)
        self.epoch, self.last_id = saved["epoch"], saved["last_id"]
        self.models = {}
        for c in self.loop.challengers:
            s = saved["challengers"][c.name]
            policy, means, blocks = None, None, []
            if s["snapshot"] is not None and s["spec"] == spec_of(c):
                try:
                    policy, means, blocks = load_policy(s["snapshot"]), s["means"], s["blocks"]
                except BanditError as exc:
                    log.error("loop %s: challenger %s's saved model does not load, starting it "
                              "again: %s", self.loop.name, c.name, exc)
            self.models[c.name] = {
                "policy": policy or make_policy(c.policy, c.featurizer),
                "spec": spec_of(c), "means": RewardMeans(means if policy else None),
                "window": Window(self.size, blocks if policy else ()), "new": []}
        self.unacked, self.first_unsaved, self.pending_done = [], None, False
        self.pending_from = "0"  # pending entries are paged from here (never re-read)

    # -- one cycle --------------------------------------------------------------------
    def step(self, promote: bool = True) -> tuple:
        """Read, evaluate and learn joined events; save if due; promote if due in auto
        mode (and ``promote``: never while the loop is pinned).
        ``(events learned, promoted version or None)``."""
        entries = []
        if not self.pending_done:
            entries = self.store.read_joined(self.pending_from, BATCH)
            self.pending_done = len(entries) < BATCH
            if entries:
                self.pending_from = entries[-1][0].decode()
        if not entries:
            entries = self.store.read_joined(">", BATCH)
        learned = self._learn(entries)
        saved = self._maybe_save()
        promoted = self._maybe_promote() if saved and promote else None
        return learned, promoted

    def _learn(self, entries) -> int:
        fresh, skipped = after(entries, self.last_id)
        if skipped:
            self.store.ack(skipped)
        if not fresh:
            return 0
        events = self.owner.store.decisions([f[b"s"].decode() for _, f in fresh])
        batch = []
        for event, (_, f) in zip(events, fresh):
            if event:
                try:
                    batch.append(feedback(event, float(f[b"r"]), slot_of(f)))
                except BanditError:
                    pass  # the champion's learner counts and logs these
        for m in self.models.values():
            self._evaluate_and_learn(m, batch, self.loop.evaluation["burn_in"])
        self.unacked.extend(sid for sid, _ in fresh)
        self.last_id = fresh[-1][0]
        if self.first_unsaved is None:
            self.first_unsaved = time.monotonic()
        return len(batch)

    @staticmethod
    def _evaluate_and_learn(m: dict, batch: list, burn_in: int) -> None:
        """Record each event's pmf (once the challenger has seen ``burn_in`` events: a
        policy's first events say little of what it becomes, and judging them would
        bias its value low), then learn the batch."""
        policy, kept = m["policy"], []
        for fb in batch:
            try:
                d = policy.decide(fb.context, fb.actions)
            except BanditError:
                continue
            pmf = np.clip(np.asarray(d.pmf, dtype=np.float64), 0.0, 1.0)
            judged = m["means"].n >= burn_in  # the reward model has seen every earlier event
            row = record(pmf, d.action_ids, fb.chosen, fb.propensity, fb.reward, m["means"])
            if judged:
                m["new"].append(row)
            kept.append(fb)
        try:
            if kept:
                policy.learn(kept)
        except BanditError:
            for fb in kept:
                try:
                    policy.learn([fb])
                except BanditError:
                    pass

    def _maybe_save(self, force: bool = False) -> bool:
        if not self.unacked:
            return False
        waited = time.monotonic() - self.first_unsaved
        if not (force or len(self.unacked) >= self.config.publish_events
                or waited >= self.config.publish_seconds):
            return False
        parts, figs = [], {}
        for name, m in self.models.items():
            block = np.array(m["new"], dtype=np.float64).reshape(-1, WIDTH)
            before = len(m["window"].blocks)
            m["window"].add(block)
            drop = before + (1 if len(block) else 0) - len(m["window"].blocks)
            figs[name] = figures(m["window"].array())
            parts.append((name, m["policy"].to_bytes(), m["spec"], m["means"].state(),
                          figs[name], block.astype("<f8").tobytes(), drop))
        status, epoch = self.store.save(self.epoch, self.last_id, self.unacked, parts)
        if status == "reset":  # a promotion emptied the windows: this save's block only
            self.epoch = epoch
            for name, m in self.models.items():
                m["window"] = Window(self.size, [np.array(m["new"]).reshape(-1, WIDTH)])
                figs[name] = figures(m["window"].array())
            self.store.set_figures(figs)
        for m in self.models.values():
            m["new"] = []
        self.unacked, self.first_unsaved = [], None
        return True

    def _maybe_promote(self):
        rule = self.loop.promotion
        if rule["mode"] != "auto" or time.monotonic() - self._checked < rule["interval"]:
            return None
        self._checked = time.monotonic()
        name = auto_candidate(self.owner)
        if name is None:
            return None
        try:
            out = promote(self.owner, name, AUTO_KEY, "automatic promotion: the gate passed")
        except ApiError as exc:  # a check failed, or the gate changed its mind: audited
            log.warning("loop %s: challenger %s not promoted: %s", self.loop.name, name,
                        exc.message)
            return None
        log.info("loop %s: challenger %s promoted as version %d", self.loop.name, name,
                 out["serving"])
        self.epoch = str(int(self.epoch) + 1)
        for m in self.models.values():
            m["window"] = Window(self.size)
        return out["serving"]

    def release(self) -> None:
        """Learn what is joined and save it (clean shutdown)."""
        while self.step(promote=False)[0]:
            pass
        self._maybe_save(force=True)
