"""A complete sequential policy plugin: don't show what this session has just seen.

Load it with ``policy = { type = "no_repeat:NoRepeat", window = 2 }`` (with this
folder on ``PYTHONPATH``) in a loop that has a ``[loops.<name>.session]`` table. To
serve a trained agent instead (Stable-Baselines3, RLlib, ...), load it in
``__init__`` and compute the scores in ``_decide`` from
``StateEncoder(state, action_ids).encode(context)``.
"""
import numpy as np

from bandits import Policy, greedy_pmf
from bandits.params import check_int, check_number


class NoRepeat(Policy):
    """Score −1 for each action among the session's last ``window`` steps, 0 otherwise;
    ε-greedy on the scores, so every logged propensity stays positive."""

    name = "no_repeat"
    sequential = True  # the service requires a session table and passes the state

    def __init__(self, window=2, epsilon=0.1):
        self.window = check_int("window", window, 1)
        self.epsilon = check_number("epsilon", epsilon, 0.0, 1.0, low_open=True)

    def _decide(self, context, pairs):
        history = context.get("_session", {}).get("history", [])[-self.window:]
        recent = {step["action"] for step in history}
        scores = np.array([-1.0 if aid in recent else 0.0 for aid, _ in pairs])
        return scores, greedy_pmf(scores, self.epsilon)

    def _learn(self, batch):
        """A fixed rule: nothing to learn."""

    def _get_state(self):
        return {}, {}

    def _set_state(self, state, arrays):
        pass
