"""A minimal third-party policy, loaded by tests as ``tests.bandits.plugin_policy:Favourite``."""
import numpy as np

from bandits import Policy


class Favourite(Policy):
    """Puts ``weight`` on the action named ``favourite`` (if offered), the rest uniform."""

    name = "favourite"

    def __init__(self, favourite="a", weight=0.9):
        if not 0 < weight < 1:
            raise ValueError("weight must be in (0, 1)")
        self.favourite, self.weight = favourite, weight
        self.rewards_ = 0.0

    def _decide(self, context, pairs):
        ids = [aid for aid, _ in pairs]
        scores = np.array([1.0 if aid == self.favourite else 0.0 for aid in ids])
        if scores.any():
            pmf = np.where(scores > 0, self.weight, (1 - self.weight) / (len(ids) - 1 or 1))
            pmf = pmf / pmf.sum()
        else:
            pmf = np.full(len(ids), 1.0 / len(ids))
        return scores, pmf

    def _learn(self, batch):
        self.rewards_ += sum(fb.reward for fb in batch)

    def _get_state(self):
        return {"rewards": self.rewards_}, {}

    def _set_state(self, state, arrays):
        self.rewards_ = state["rewards"]


class Uniform:
    """A policy that does not subclass Policy: only ``decide``, ``learn``, ``to_bytes``
    and ``from_bytes`` (loaded as ``tests.bandits.plugin_policy:Uniform``)."""

    name = "uniform"

    def decide(self, context, actions):
        from bandits import Decision
        from bandits.inputs import normalize_actions

        ids = tuple(aid for aid, _ in normalize_actions(actions))
        return Decision(ids, np.full(len(ids), 1.0 / len(ids)), np.zeros(len(ids)), self.name)

    def learn(self, batch):
        pass

    def to_bytes(self):
        return b""

    @classmethod
    def from_bytes(cls, data):
        return cls()


class Pinned(Favourite):
    """Overrides the public ``decide``: every probability on the last action."""

    name = "pinned"

    def decide(self, context, actions):
        from bandits import Decision
        from bandits.inputs import normalize_actions

        ids = tuple(aid for aid, _ in normalize_actions(actions))
        return Decision(ids, np.eye(len(ids))[-1], np.zeros(len(ids)), self.name)
