"""A grid of simulations: policies × environments × seeds, one in-process run per cell.

Each :class:`Cell` is a plain description (policy spec, environment spec, seed, rounds)
and :func:`run_cell` plays it with :func:`bandits.environments.run_policy`. A cell's
seed seeds its environment, the sampling of its actions and its policy (``lints``,
``vw``: when the spec sets no ``seed``), and the run uses one BLAS thread, so a cell
gives the same figures wherever it runs: in this process or on a Ray worker
(:func:`replay.ray_map.ray_map`). :func:`summarize` folds the seeds of each
(policy, environment) pair into means and standard deviations, :func:`grid_table`
prints them.

>>> cells = grid_cells([("eg", {"type": "epsilon_greedy"}, None)], [{"type": "linear"}],
...                    seeds=[0, 1], rounds=50)
>>> rows = summarize(map(run_cell, cells))
>>> [(r["policy"], r["environment"], r["seeds"], r["rounds"]) for r in rows]
[('eg', 'linear: 5 actions, 6 features', 2, 50)]
"""
from __future__ import annotations

import csv
import dataclasses
import inspect

import numpy as np
from threadpoolctl import threadpool_limits

from bandits import make_policy
from bandits.environments import make_environment, run_policy
from bandits.registry import resolve

#: Figures of a cell that :func:`summarize` averages over seeds.
FIGURES = ("expected", "final_expected", "final_uniform", "final_best_fixed", "final_optimal",
           "regret")
#: Per-cell columns of ``grid.csv``.
CSV_COLUMNS = ("policy", "environment", "seed", "rounds") + FIGURES


@dataclasses.dataclass
class Cell:
    """One run: ``policy`` (its label) from ``spec`` in ``env`` (a spec without seed)."""

    policy: str
    spec: dict
    featurizer: dict | None
    env: dict
    seed: int
    rounds: int
    delay: int = 0
    missing: float = 0.0


def grid_cells(policies, envs, seeds, rounds: int, *, delay: int = 0, missing: float = 0.0) -> list:
    """Cells of policies × environments × seeds, in that order; ``policies`` are
    ``(label, spec, featurizer)`` triples, ``envs`` specifications without seed."""
    return [Cell(label, dict(spec), featurizer, dict(env), int(seed), rounds, delay, missing)
            for label, spec, featurizer in policies for env in envs for seed in seeds]


def seeded_policy(spec: dict, featurizer, seed: int):
    """The policy of ``spec``, seeded with ``seed`` when it takes one and sets none."""
    spec = dict(spec)
    if "seed" not in spec and "seed" in inspect.signature(resolve(spec["type"]).__init__).parameters:
        spec["seed"] = seed
    return make_policy(spec, featurizer)


def run_cell(cell: Cell) -> dict:
    """Play one cell; its trajectory's summary with ``environment`` and ``seed``."""
    with threadpool_limits(limits=1, user_api="blas"):
        env = make_environment({**cell.env, "seed": cell.seed})
        policy = seeded_policy(cell.spec, cell.featurizer, cell.seed)
        traj = run_policy(policy, env, cell.rounds, seed=cell.seed, delay=cell.delay,
                          missing=cell.missing, label=cell.policy)
    return {**traj.summary(), "environment": env.describe(), "seed": cell.seed}


def summarize(results) -> list:
    """One row per (policy, environment), in first-seen order: ``seeds``, ``rounds`` and,
    for each of :data:`FIGURES`, its mean and standard deviation over the seeds
    (``<figure>`` and ``<figure>_sd``; the sd is 0 for a single seed)."""
    groups: dict = {}
    for r in results:
        groups.setdefault((r["policy"], r["environment"]), []).append(r)
    rows = []
    for (policy, environment), runs in groups.items():
        row = {"policy": policy, "environment": environment, "seeds": len(runs),
               "rounds": runs[0]["rounds"]}
        for name in FIGURES:
            values = np.array([r[name] for r in runs])
            row[name] = float(values.mean())
            row[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def grid_table(rows) -> str:
    """Policy, environment, seeds, then mean ± sd over seeds of the final expected reward
    per round (last 20% of rounds) and of the total regret, and the final optimum."""
    rows = list(rows)
    pw = max([6] + [len(r["policy"]) for r in rows]) + 2
    ew = max([11] + [len(r["environment"]) for r in rows]) + 2
    lines = [f"{'policy':<{pw}}{'environment':<{ew}}{'seeds':>5}{'rounds':>8}"
             f"{'final ± sd':>19}{'optimal':>9}{'regret ± sd':>20}"]
    for r in rows:
        final = f"{r['final_expected']:.4f} ± {r['final_expected_sd']:.4f}"
        regret = f"{r['regret']:.1f} ± {r['regret_sd']:.1f}"
        lines.append(f"{r['policy']:<{pw}}{r['environment']:<{ew}}{r['seeds']:>5}{r['rounds']:>8}"
                     f"{final:>19}{r['final_optimal']:>9.4f}{regret:>20}")
    return "\n".join(lines)


def write_grid_csv(results, path: str) -> None:
    """One row per cell (:data:`CSV_COLUMNS`)."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(CSV_COLUMNS)
        out.writerows([r[c] for c in CSV_COLUMNS] for r in results)


def parse_seeds(text: str, first: int = 0) -> list:
    """``"N"``: the N seeds ``first``..``first + N - 1``; ``"3,7,11"``: those seeds."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(first, first + int(text)))
    except ValueError:
        raise ValueError(f"--seeds: expected a count or a comma-separated list of integers, "
                         f"got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: expected at least one seed and no seed twice, got {text!r}")
    return seeds

