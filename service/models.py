"""The policy an API worker serves for one loop: the version of its serving pointer.

Workers never restart to deploy: every :data:`REFRESH_S` seconds (checked on the next
request) a worker reads the loop's serving pointer (:mod:`service.store.registry`), one
small Redis read, and loads that version's snapshot if it changed. The pointer moves
with each publication of a learning loop and with each deploy.

The same read gives the exploration floor a drift correction may have raised
(pointer fields ``explore`` = ε and ``explore_until``, :mod:`service.drift_learner`)
and the loop's ``decisions`` counter: :meth:`ServedModel.floor` is ε while the counter
last read is below ``explore_until`` (so a floor ends within :data:`REFRESH_S` of the
counter passing it), 0 otherwise.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace

from bandits import BanditError, load_policy
from bandits.featurizer import Featurizer

from .config import LoopConfig
from .store import LoopStore
from .store.registry import Registry

log = logging.getLogger(__name__)

#: Seconds between two version checks of a worker (deploy latency is at most this).
REFRESH_S = 0.5


def spec_text(loop: LoopConfig) -> str:
    """The loop's policy + featurizer spec as canonical JSON: a model built from another
    spec is not served (nor learned on) after a configuration change."""
    return json.dumps({"policy": loop.policy, "featurizer": loop.featurizer}, sort_keys=True)


def servable(loop: LoopConfig) -> dict:
    """``{spec text: LoopConfig}`` of every specification the loop may serve: its own and
    each challenger's (a promoted challenger serves as the loop with its policy and
    featurizer). The values are what checks and the learner use for such a version."""
    variants = [loop] + [replace(loop, policy=c.policy, featurizer=c.featurizer, challengers=())
                         for c in loop.challengers]
    return {spec_text(v): v for v in reversed(variants)}


class ServedModel:
    """Thread-safe holder of ``(policy, version)`` for one loop in one process."""

    def __init__(self, store: LoopStore, loop: LoopConfig, registry: Registry):
        self.store, self.loop, self.registry = store, loop, registry
        self.lock = threading.Lock()  # decide mutates featurizer memos: one at a time
        self._refreshing = threading.Lock()
        self.served = (loop.new_policy(), 0)  # one tuple: a thread reads both or neither new
        self._specs = servable(loop)
        self._checked = float("-inf")
        self._unloadable = None  # a published version load_policy refused (not retried)
        self._floor = (0.0, 0)   # (explore ε, explore_until) of the pointer
        self._decisions = 0      # the loop's decisions counter at the last check

    def current(self) -> tuple:
        """``(policy, version)``, refreshed if the last check is older than REFRESH_S.

        One thread refreshes at a time; the others serve the current pair meanwhile (a
        slow load never queues requests, nor lets an older load replace a newer one)."""
        now = time.monotonic()
        if now - self._checked >= REFRESH_S and self._refreshing.acquire(blocking=False):
            try:
                self._checked = now
                self.refresh()
            finally:
                self._refreshing.release()
        return self.served

    @property
    def policy(self):
        """The policy served now."""
        return self.served[0]

    @property
    def version(self) -> int:
        """The model version served now (0: the loop's untrained policy)."""
        return self.served[1]

    def floor(self) -> float:
        """The exploration floor ε to apply now (0: none); see the module's docstring."""
        eps, until = self._floor
        return eps if eps > 0.0 and self._decisions < until else 0.0

    def refresh(self) -> bool:
        """Load the serving version if it is new; True when the model changed."""
        meta, self._decisions = self.registry.pointer_and_decisions()
        try:
            self._floor = (float(meta.get("explore", 0.0)), int(meta.get("explore_until", 0)))
        except ValueError:  # a hand-edited pointer: no floor rather than failed ranks
            self._floor = (0.0, 0)
        version = int(meta.get("version", 0))
        current, served = self.served
        if version == served or meta.get("spec") not in self._specs:
            return False
        if version == self._unloadable:
            return False
        blob = self.store.model_bytes(version)
        if blob is None:  # dropped between the two reads: the next check gets the pointer's
            return False
        try:
            policy = load_policy(blob)
        except BanditError as exc:  # keep serving the current version rather than fail ranks
            self._unloadable = version
            log.error("loop %s: model version %d cannot be loaded, still serving version %d: %s",
                      self.loop.name, version, served, exc)
            return False
        with self.lock:
            keep_featurizer_memos(current, policy)
            self.served = (policy, version)
        log.info("loop %s: serving model version %d", self.loop.name, version)
        return True


def keep_featurizer_memos(old, new) -> None:
    """Give ``new`` the featurizer of ``old`` when both hash alike (same configuration).

    A featurizer's memos (hashed keys, namespace layouts, featurized catalogue items)
    depend only on its configuration, and a reloaded model starts them empty: with a
    model published every few seconds, every worker would otherwise re-featurize its
    catalogue after each one (10-20 ms of CPU in its next hundred requests, measured
    with 500 items).
    """
    f_old, f_new = getattr(old, "featurizer", None), getattr(new, "featurizer", None)
    if (isinstance(f_old, Featurizer) and type(f_new) is type(f_old)
            and f_old.get_config() == f_new.get_config()):
        new.featurizer = f_old
