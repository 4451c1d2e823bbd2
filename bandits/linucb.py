"""LinUCB (Li et al. 2010), disjoint and shared, with an ε floor on the pmf."""
from __future__ import annotations

from .exploration import greedy_pmf
from .linear import LinearPolicy
from .params import check_number


class LinUCB(LinearPolicy):
    """Pick the action with the highest upper confidence bound θᵀx + α√(xᵀA⁻¹x).

    Plain LinUCB is deterministic: the logged propensity of every other action
    would be 0, and offline estimators (IPS, DR) divide by the logging propensity,
    so no other policy could ever be evaluated on those logs. The pmf therefore puts
    1−ε on the UCB argmax (split over ties) and ε/K on every action: the argmax is
    logged with 1−ε+ε/K and the others with ε/K > 0.

    Parameters
    ----------
    alpha : float >= 0
        Width of the confidence bonus.
    epsilon : float in (0, 1]
        Exploration floor (default 0.01).
    featurizer, model, l2, window : see :class:`bandits.linear.LinearPolicy`

    References
    ----------
    Li, Chu, Langford, Schapire. A contextual-bandit approach to personalized news
    article recommendation. WWW 2010.

    Examples
    --------
    >>> p = LinUCB(alpha=1.0, epsilon=0.1, model="disjoint")
    >>> p.learn([{"actions": ["a", "b"], "chosen": 0, "propensity": 0.5, "reward": 0.0}])
    >>> d = p.decide({}, ["a", "b"])   # "b" is unseen: its bound is wider
    >>> d.pmf.tolist(), d.scores.round(3).tolist()
    ([0.05, 0.95], [0.707, 1.0])
    """

    name = "linucb"

    def __init__(self, alpha=1.0, epsilon=0.01, featurizer=None, model="shared", l2=1.0, window=0):
        super().__init__(featurizer, model, l2, window)
        self.alpha = check_number("alpha", alpha, 0.0)
        self.epsilon = check_number("epsilon", epsilon, 0.0, 1.0, low_open=True)

    def _score(self, ids, X):
        means, widths = self._means_and_widths(ids, X)
        ucb = means + self.alpha * widths
        return ucb, greedy_pmf(ucb, self.epsilon)
