"""What happened in a simulated run, round by round, and its summary against the
exact baselines: the optimum, uniform random, and the best fixed action in hindsight.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: CSV columns of :meth:`Trajectory.rows`.
COLUMNS = ("round", "event_id", "chosen", "probability", "reward", "expected", "optimal",
           "uniform", "cum_reward", "cum_regret")


@dataclass
class Trajectory:
    """Per-round records of one policy in one environment.

    ``reward`` is the observed reward (NaN where it was never sent), ``expected`` the
    chosen action's expected reward; regret is ``optimal − expected`` (pseudo-regret:
    exact, free of reward noise).
    """

    label: str
    event_ids: list = field(default_factory=list)
    chosen: list = field(default_factory=list)
    probability: list = field(default_factory=list)
    reward: list = field(default_factory=list)
    expected: list = field(default_factory=list)
    optimal: list = field(default_factory=list)
    uniform: list = field(default_factory=list)
    _shown: list = field(default_factory=list, repr=False)

    def record(self, rnd, k: int, probability: float, reward: float, event_id: str) -> None:
        """Add round ``rnd`` (a :class:`Round`) where candidate ``k`` was chosen."""
        self.event_ids.append(event_id)
        self.chosen.append(rnd.actions[k]["id"])
        self.probability.append(float(probability))
        self.reward.append(float(reward))
        self.expected.append(float(rnd.expected[k]))
        self.optimal.append(rnd.optimal)
        self.uniform.append(rnd.uniform)
        self._shown.append((rnd.ids, rnd.expected))

    def __len__(self):
        return len(self.chosen)

    def action_means(self) -> dict:
        """Mean expected reward of each action id over the rounds it was a candidate."""
        totals, counts = {}, {}
        for ids, mu in self._shown:
            for a, m in zip(ids, mu.tolist()):
                totals[a] = totals.get(a, 0.0) + m
                counts[a] = counts.get(a, 0) + 1
        return {a: totals[a] / counts[a] for a in totals}

    def best_fixed(self) -> np.ndarray:
        """Per round, the expected reward of the best context-free choice in hindsight.

        Actions are ranked by :meth:`action_means`; each round takes its top-ranked
        candidate. With a fixed action set this is exactly the best single action.
        """
        mean = self.action_means()
        out = np.empty(len(self._shown))
        for t, (ids, mu) in enumerate(self._shown):
            out[t] = mu[max(range(len(ids)), key=lambda i: mean[ids[i]])]
        return out

    def rows(self):
        """CSV rows (see :data:`COLUMNS`)."""
        cum_r = np.cumsum(np.nan_to_num(self.reward))
        cum_regret = np.cumsum(np.subtract(self.optimal, self.expected))
        for t in range(len(self)):
            yield (t, self.event_ids[t], self.chosen[t], self.probability[t], self.reward[t],
                   self.expected[t], self.optimal[t], self.uniform[t], cum_r[t], cum_regret[t])

    def summary(self, tail: float = 0.2) -> dict:
        """Means per round over the run and over its last ``tail`` share of rounds."""
        n = len(self)
        start = n - max(1, int(round(n * tail)))
        best = self.best_fixed()
        out = {"policy": self.label, "rounds": n}
        for name, sl in (("", slice(None)), ("final_", slice(start, None))):
            out.update({f"{name}expected": float(np.mean(self.expected[sl])),
                        f"{name}optimal": float(np.mean(self.optimal[sl])),
                        f"{name}uniform": float(np.mean(self.uniform[sl])),
                        f"{name}best_fixed": float(np.mean(best[sl]))})
        out["observed"] = float(np.nanmean(self.reward)) if n else float("nan")
        out["regret"] = float(np.sum(np.subtract(self.optimal, self.expected)))
        return out
