"""The drift detectors of one loop, run by the learner on the events it learns, and
the corrections they trigger (the math: :mod:`service.drift`).

Exactly once: :class:`LoopDrift` sees each event the learner learns
(:meth:`service.learner.LoopLearner._learn`), and its state is written in the same
script that publishes the model holding those events and acknowledges them
(:meth:`service.store.registry.Registry.publish`). After a crash, a deploy or a
promotion the learner reloads both from Redis and reads the unacknowledged events
again: the detectors see them once more from the state that never saw them. While a
loop is pinned its events are not learned, and the detectors pause with it.

The loop's drift hash (:func:`service.store.keys.drift`) holds ``state`` (the
detectors, pickled: river's detectors have no other format; only the learner writes
and reads it) and one JSON object per field, as the health endpoint shows them:
``reward``, ``context``, ``actions`` and ``correction``.

Each detection, and what the learner did about it, is done once the state holding it
is published: an audit entry (action ``drift``, ``figures`` the detector's figures),
then, for a reward drop, the correction of ``drift.on_reward_drift``:

- ``alert``: nothing more;
- ``explore``: the exploration floor ε = ``explore_epsilon`` for the next
  ``explore_for`` decisions, written into the serving pointer (every worker applies
  it within :data:`service.models.REFRESH_S`);
- ``reset``: a fresh, unlearned model from the loop's policy specification, uploaded
  as a new version (source ``reset``), checked by the pre-deployment checks, deployed
  with learning on (forced: a fresh model has no live figures for the gate); the
  learner continues from it. A failed check is audited and leaves the champion serving.

Both corrections are audited (action ``correction``). A crash between the
publication and the end of this leaves the detections in the saved state; the next
learner acts on them (an audit entry may then show twice, never a detection lost).
"""
from __future__ import annotations

import json
import logging
import pickle
import time

from .checks import MAX_DECISIONS, run_checks
from .drift import RewardDetector, Windows
from .models import spec_text

log = logging.getLogger(__name__)

#: The audit's key name of what the learner does about drift.
DRIFT_KEY = "learner (drift)"
#: Version of the pickled state; a state of another version is started again.
STATE_VERSION = 1


class LoopDrift:
    """The detectors of one loop; ``owner`` is its :class:`service.learner.LoopLearner`."""

    def __init__(self, owner):
        self.owner, self.loop, self.registry = owner, owner.loop, owner.registry
        self.cfg = owner.loop.drift
        self.identity = (STATE_VERSION, self.cfg["detector"], self.cfg["delta"],
                         self.cfg["ph_threshold"], self.cfg["window"], self.cfg["psi_threshold"])
        self.correction: dict = {}

    def _fresh(self) -> dict:
        c = self.cfg
        return {"identity": self.identity,
                "reward": RewardDetector(c["detector"], c["delta"], c["window"],
                                         c["ph_threshold"]),
                "windows": Windows(c["window"], c["psi_threshold"],
                                   hashed_actions=self.loop.actions is None),
                "todo": []}

    def load(self) -> None:
        """Start from the published state (a fresh one when there is none, or it was
        saved with other settings)."""
        fields = self.registry.drift_fields()
        self.state = None
        if fields.get("state"):
            try:
                saved = pickle.loads(fields["state"])
                if saved.get("identity") == self.identity:
                    self.state = saved
                else:
                    log.info("loop %s: drift settings changed; detectors start again", self.loop.name)
            except Exception as exc:  # noqa: BLE001 - an unreadable state is started again
                log.warning("loop %s: drift state unreadable, detectors start again: %s",
                            self.loop.name, exc)
        if self.state is None:
            self.state = self._fresh()
        raw = fields.get("correction")
        self.correction = json.loads(raw) if raw else {}

    def observe(self, feedback) -> None:
        """Feed the learned events (:class:`bandits.Feedback`) to every detector."""
        reward, windows, todo = self.state["reward"], self.state["windows"], self.state["todo"]
        for fb in feedback:
            if reward.update(float(fb.reward)):
                todo.append(("reward", reward.figures()))
            done = windows.add(fb.context, fb.actions[fb.chosen]["id"])
            if done is not None:
                if done["context"]["drifted"]:
                    todo.append(("context", done["context"]))
                if done["actions"]["drifted"]:
                    todo.append(("actions", done["actions"]))

    def fields(self) -> dict:
        """The drift hash's fields as they stand (written with the next publication)."""
        s = self.state
        return {"state": pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL),
                "reward": _json(s["reward"].figures()),
                "context": _json(s["windows"].context_figures),
                "actions": _json(s["windows"].action_figures)}

    def published(self) -> bool:
        """After a publication holding the state: audit its detections and correct.
        True when a reset moved the learner's head (the learner then reloads)."""
        todo = self.state["todo"]
        moved = False
        if todo:
            self.state["todo"] = []
            for kind, figures in todo:
                self.registry.note("drift", DRIFT_KEY, f"{kind} drift detected", figures)
            rewards = [f for kind, f in todo if kind == "reward"]
            if rewards:
                moved = self._correct(rewards[-1])
            self.registry.set_drift({"state": self.fields()["state"]})
        self._expire()
        return moved

    # -- corrections --------------------------------------------------------------------
    def _correct(self, figures: dict) -> bool:
        mode = self.cfg["on_reward_drift"]
        if mode == "explore":
            self._explore(figures)
        elif mode == "reset":
            return self._reset(figures)
        return False

    def _explore(self, figures: dict) -> None:
        eps, n = self.cfg["explore_epsilon"], self.cfg["explore_for"]
        decisions = self.owner.store.stats().get("decisions", 0)
        self.correction = {"mode": "explore", "active": True, "epsilon": eps,
                           "until": decisions + n, "started": time.time()}
        self.registry.raise_floor(eps, decisions + n, _json(self.correction))
        self.registry.note("correction", DRIFT_KEY,
                           f"reward drift: exploration floor {eps:g} for {n} decisions",
                           {"detection": figures, "correction": self.correction})
        log.warning("loop %s: reward drift; exploration floor %g until decision %d",
                    self.loop.name, eps, decisions + n)

    def _expire(self) -> None:
        c = self.correction
        if c.get("mode") == "explore" and c.get("active"):
            if self.owner.store.stats().get("decisions", 0) >= c["until"]:
                self.correction = {**c, "active": False}
                self.registry.end_floor(_json(self.correction))

    def _reset(self, figures: dict) -> bool:
        owner, loop = self.owner, self.loop
        policy = loop.new_policy()
        blob = policy.to_bytes()
        checks = run_checks(blob, loop, owner.store.recent_decisions(MAX_DECISIONS),
                            owner.config.models_check_latency * 1000.0)
        failed = checks.first_failure()
        basis = {"detection": figures, "checks": {c.name: c.passed for c in checks.checks}}
        if failed is not None:
            self.registry.refuse(None, DRIFT_KEY, f"reward drift: reset: check {failed.name} "
                                 f"failed: {failed.message}", _json(basis))
            log.error("loop %s: reward drift; reset refused by check %s: %s", loop.name,
                      failed.name, failed.message)
            return False
        entry = {"created": time.time(), "parent": None, "source": "reset", "events_learned": 0,
                 "policy": {"name": policy.name, "params": policy.get_params()},
                 "spec": spec_text(loop), "bytes": len(blob), "checks": checks.to_dict(),
                 "reset_on": figures}
        reason = "reward drift: reset to a fresh model"
        version = self.registry.upload(blob, entry, DRIFT_KEY, reason)
        status, previous = self.registry.deploy(version, True, True, DRIFT_KEY, reason, _json(basis))
        if status != "ok":
            log.error("loop %s: reward drift; reset version %d not deployed (%s)", loop.name,
                      version, status)
            return False
        self.correction = {"mode": "reset", "active": False, "epsilon": None, "until": None,
                           "started": time.time(), "version": version, "previous": previous}
        self.registry.set_drift({"correction": _json(self.correction)})
        self.registry.note("correction", DRIFT_KEY, reason, {**basis, "correction": self.correction},
                           version=version)
        log.warning("loop %s: reward drift; reset to fresh version %d", loop.name, version)
        return True


def _json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)
