"""Epsilon-greedy over a ridge reward model."""
from __future__ import annotations

from .exploration import greedy_pmf
from .linear import LinearPolicy
from .params import check_number


class EpsilonGreedy(LinearPolicy):
    """Exploit the ridge estimate θᵀx with probability 1−ε, explore uniformly with ε.

    Propensities: the greedy action gets exactly 1−ε+ε/K, every other ε/K; tied
    greedy actions share the 1−ε evenly. With ``decay`` > 0, after n learned events
    ε_n = max(min_epsilon, ε / (1 + decay·n)).

    Parameters
    ----------
    epsilon : float in (0, 1]
    decay : float >= 0
    min_epsilon : float in (0, 1], floor of the decayed ε (keeps propensities > 0)
    featurizer, model, l2, window : see :class:`bandits.linear.LinearPolicy`

    Examples
    --------
    >>> p = EpsilonGreedy(epsilon=0.2)
    >>> p.decide({}, ["a", "b"]).pmf.tolist()   # no data yet: a tie, split evenly
    [0.5, 0.5]
    >>> p.learn([{"actions": ["a", "b"], "chosen": 1, "propensity": 0.5, "reward": 1.0}])
    >>> p.decide({}, ["a", "b"]).pmf.tolist()
    [0.1, 0.9]
    """

    name = "epsilon_greedy"

    def __init__(self, epsilon=0.1, decay=0.0, min_epsilon=0.01, featurizer=None,
                 model="shared", l2=1.0, window=0):
        super().__init__(featurizer, model, l2, window)
        self.epsilon = check_number("epsilon", epsilon, 0.0, 1.0, low_open=True)
        self.decay = check_number("decay", decay, 0.0)
        self.min_epsilon = check_number("min_epsilon", min_epsilon, 0.0, 1.0, low_open=True)

    def current_epsilon(self) -> float:
        """ε after the decay schedule, never below ``min_epsilon``."""
        if not self.decay:
            return self.epsilon
        return max(self.min_epsilon, self.epsilon / (1.0 + self.decay * self.n_learned))

    def _score(self, ids, X):
        means = self._means(ids, X)
        return means, greedy_pmf(means, self.current_epsilon())
