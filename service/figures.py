"""The live figures of a model version, as the registry shows them.

Pure: the counts come from the loop's scripts (:meth:`service.store.registry.Registry.figures`
reads them), and this module turns them into the decisions served, the rewards joined
and the mean reward with its 95 % normal confidence interval.
"""
from __future__ import annotations

import math
import sys

#: z of a two-sided 95 % normal interval.
Z95 = 1.96


def mean_interval(n: int, total: float, total_sq: float, z: float = Z95) -> tuple:
    """``(mean, low, high)`` of ``n`` rewards from their sum and sum of squares.

    The interval is mean ± z·√(s²/n), s² the sample variance
    (Σr² − (Σr)²/n) / (n − 1); with no reward all three are None, with one reward the
    bounds are None (a sample variance needs two). A difference Σr² − (Σr)²/n within the
    rounding error of the sums (4·n·ε·Σr², ε the float64 epsilon) is taken as 0: equal
    rewards have an interval of width 0.

    >>> mean_interval(4, 2.0, 2.0)  # rewards 1, 1, 0, 0: s² = 1/3
    (0.5, -0.0658032638058333, 1.0658032638058333)
    >>> [round(x, 12) for x in mean_interval(3, 0.3, 0.03)]  # rewards 0.1, 0.1, 0.1
    [0.1, 0.1, 0.1]
    >>> mean_interval(1, 0.25, 0.0625), mean_interval(0, 0.0, 0.0)
    ((0.25, None, None), (None, None, None))
    """
    if n < 1:
        return None, None, None
    mean = total / n
    if n < 2:
        return mean, None, None
    spread = total_sq - total * total / n
    if spread <= 4 * n * sys.float_info.epsilon * total_sq:
        spread = 0.0
    half = z * math.sqrt(spread / (n - 1) / n)
    return mean, mean - half, mean + half


def live_figures(decisions: int, rewards: int, total: float, total_sq: float) -> dict:
    """The ``figures`` of a registry entry: ``decisions`` the version served,
    ``rewards`` joined to them (a default reward at the end of the window included),
    ``mean_reward`` and its interval [``low``, ``high``] (:func:`mean_interval`).

    >>> live_figures(10, 0, 0.0, 0.0)
    {'decisions': 10, 'rewards': 0, 'mean_reward': None, 'low': None, 'high': None}
    """
    mean, low, high = mean_interval(rewards, total, total_sq)
    return {"decisions": decisions, "rewards": rewards, "mean_reward": mean, "low": low, "high": high}
