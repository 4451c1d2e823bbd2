"""Files and tables of simulated runs: a CSV per run, a PNG of cumulative reward and
regret, and the final table (shared by ``scripts/simulate.py`` and ``cbserve demo``).
"""
from __future__ import annotations

import csv
import re

import numpy as np

from bandits.environments.trajectory import COLUMNS

#: Width of the policy column; a longer label widens it for the whole table.
POLICY_WIDTH = 34
COLUMNS_RIGHT = (f"{'rounds':>7}{'reward':>9}{'final':>9}{'uniform':>9}"
                 f"{'best fixed':>11}{'optimal':>9}{'regret':>9}")


def slug(text: str) -> str:
    """A file-name-safe version of a label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def write_csv(traj, path: str) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        out.writerows(traj.rows())


def table(summaries) -> str:
    """The final table: expected reward per round (whole run, and final 20%) against
    uniform random, the best fixed action and the optimum in the same final rounds;
    total regret. Labels are never cut: a long one widens the policy column."""
    summaries = list(summaries)
    width = max([POLICY_WIDTH - 1] + [len(s["policy"]) for s in summaries]) + 1
    lines = [f"{'policy':<{width}}" + COLUMNS_RIGHT]
    for s in summaries:
        lines.append(f"{s['policy']:<{width}}{s['rounds']:>7}{s['expected']:>9.4f}"
                     f"{s['final_expected']:>9.4f}{s['final_uniform']:>9.4f}"
                     f"{s['final_best_fixed']:>11.4f}{s['final_optimal']:>9.4f}{s['regret']:>9.1f}")
    return "\n".join(lines)


def plot(groups: dict, path: str) -> None:
    """One row per environment (``{title: [trajectories]}``): cumulative expected
    reward with the uniform, best-fixed and optimal references, and cumulative regret."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 3.6 * len(groups)), squeeze=False)
    for (title, trajs), (ax_r, ax_g) in zip(groups.items(), axes):
        first = trajs[0]
        t = np.arange(1, len(first) + 1)
        for name, values, style in (("optimal", first.optimal, ":"), ("best fixed", first.best_fixed(), "--"),
                                    ("uniform", first.uniform, "-.")):
            ax_r.plot(t, np.cumsum(values), style, color="grey", label=name)
        for traj in trajs:
            line, = ax_r.plot(t[:len(traj)], np.cumsum(traj.expected), label=traj.label)
            ax_g.plot(t[:len(traj)], np.cumsum(np.subtract(traj.optimal, traj.expected)),
                      color=line.get_color(), label=traj.label)
        for name, values, style in (("best fixed", first.best_fixed(), "--"), ("uniform", first.uniform, "-.")):
            ax_g.plot(t, np.cumsum(np.subtract(first.optimal, values)), style, color="grey", label=name)
        ax_r.set(title=f"{title}\ncumulative expected reward", xlabel="round")
        ax_g.set(title=f"{title}\ncumulative regret (optimal − expected)", xlabel="round")
        ax_r.legend(fontsize=8)
        ax_g.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
