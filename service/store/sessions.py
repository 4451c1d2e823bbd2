"""Sessions of a sequential loop: the state a policy sees at each step.

A loop with a ``session`` table keys its decisions by the caller's ``session_id``.
Redis keeps, per session, the step count and the last ``history`` (action, reward)
pairs with a TTL renewed at every step (:data:`service.store.lua.LOG_STEP`); an ``end`` call,
or ``"end": true`` on a reward, closes the episode, and the next step of the same id
starts a new one. The policy receives the state inside the context, under the metadata
namespace :data:`STATE_KEY`, which bandit policies ignore (``_`` keys are never
features) and sequential policies read. Pure functions: the Redis calls are in
:mod:`service.store.loop`.
"""
from __future__ import annotations

from dataclasses import dataclass

from bandits.state import SESSION_KEY as STATE_KEY  # the namespace policies read the state from


@dataclass(frozen=True)
class SessionState:
    """A session before its next step: ``step`` steps taken, the last of them in
    ``history`` (oldest first, each ``{"action": id, "reward": float | None}``)."""

    session_id: str
    step: int
    history: list

    def as_context(self, context: dict) -> dict:
        """The request context plus this state under :data:`STATE_KEY`."""
        return {**context, STATE_KEY: {"id": self.session_id, "step": self.step,
                                       "history": self.history}}


def parse_state(session_id: str, fields: dict) -> SessionState:
    """The state from a session hash (``HGETALL``; empty for a new session)."""
    f = {k.decode(): v.decode() for k, v in fields.items()}
    if not f or "end" in f:  # new, expired or ended: the next step opens an episode
        return SessionState(session_id, 0, [])
    n = int(f["n"])
    history, i = [], n - 1
    while i >= 0 and f"a:{i}" in f:
        reward = f.get(f"r:{i}")
        history.append({"action": f[f"a:{i}"], "reward": None if reward is None else float(reward)})
        i -= 1
    return SessionState(session_id, n, history[::-1])
