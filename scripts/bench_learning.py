"""Supervised-to-bandit learning benchmark on scikit-learn's bundled datasets.

Each class is an action; the reward is 1 when the chosen action is the label. One
pass over the data in a seeded shuffled order, features standardized, learning
after every decision; the figure is the progressive (online) average reward.
cbserve policies run beside Vowpal Wabbit's ``--cb_explore_adf`` driven directly
(``--epsilon 0.1`` and ``--squarecb``, plain quadratic features ``-q sa``) and
uniform random, on the same orders; each figure is the mean over 5 seeds.

Usage: python scripts/bench_learning.py [--seeds N] [--datasets digits,wine]
The last line is one JSON object: ``<dataset>_<policy>`` and ``digits_best``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import vowpalwabbit
from sklearn import datasets

from bandits import Feedback, make_policy, sample_index

DATASETS = {"digits": datasets.load_digits, "wine": datasets.load_wine,
            "breast_cancer": datasets.load_breast_cancer}


def cbserve_policies(n_features: int) -> dict:
    """The cbserve configurations compared; one setting for every dataset."""
    dense = {"context_dense": {"x.v": n_features}, "context_dim": 1, "interaction_dim": 0}
    return {
        "linucb": {"type": "linucb", "alpha": 0.2, "model": "disjoint", "featurizer": dense},
        "lints": {"type": "lints", "v": 0.1, "model": "disjoint", "featurizer": dense},
        "epsilon_greedy": {"type": "epsilon_greedy", "epsilon": 0.05, "model": "disjoint",
                           "featurizer": dense},
        "linucb_shared": {"type": "linucb", "alpha": 0.2, "featurizer": dict(dense, interaction_dim=128)},
        "vw_cbserve": {"type": "vw", "args": "--squarecb"},
    }


def run_cbserve(spec, X, y, seed) -> float:
    policy = make_policy(spec)
    actions = [str(c) for c in range(int(y.max()) + 1)]
    dense = "featurizer" in spec
    total = 0.0
    for t, (x, label) in enumerate(zip(X, y)):
        ctx = {"x": {"v": x.tolist()}} if dense else {"x": {f"f{i}": v for i, v in enumerate(x.tolist())}}
        d = policy.decide(ctx, actions)
        k = sample_index(d.pmf, seed, f"e{t}")
        r = float(k == label)
        total += r
        policy.learn([Feedback(ctx, actions, k, float(d.pmf[k]), r)])
    return total / len(y)


def run_vw_peer(args, X, y, seed) -> float:
    """VW itself, fed text directly: the peer configuration as VW users run it."""
    ws = vowpalwabbit.Workspace(f"--cb_explore_adf {args} -q sa --quiet --random_seed {seed}")
    n_actions = int(y.max()) + 1
    total = 0.0
    for t, (x, label) in enumerate(zip(X, y)):
        shared = "shared |s " + " ".join(f"f{i}:{v:.6g}" for i, v in enumerate(x) if v)
        lines = [shared] + [f"|a a{k}" for k in range(n_actions)]
        pmf = np.asarray(ws.predict(lines), dtype=np.float64)
        k = sample_index(pmf / pmf.sum(), seed, f"e{t}")
        r = float(k == label)
        total += r
        lines[k + 1] = f"0:{-r}:{pmf[k] / pmf.sum()} {lines[k + 1]}"
        ws.learn(lines)
    ws.finish()
    return total / len(y)


def load(name, seed):
    X, y = DATASETS[name](return_X_y=True)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    order = np.random.default_rng(seed).permutation(len(y))
    return X[order], y[order]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args(argv)
    figures = {}
    for name in args.datasets.split(","):
        X0, _ = load(name, 0)
        runners = {p: (lambda spec: lambda X, y, s: run_cbserve(spec, X, y, s))(spec)
                   for p, spec in cbserve_policies(X0.shape[1]).items()}
        runners["vw_epsilon"] = lambda X, y, s: run_vw_peer("--epsilon 0.1", X, y, s)
        runners["vw_squarecb"] = lambda X, y, s: run_vw_peer("--squarecb", X, y, s)
        runners["uniform"] = lambda X, y, s: 1.0 / (int(y.max()) + 1)
        print(f"\n{name}: n={len(X0)}, features={X0.shape[1]}, actions={len(set(load(name, 0)[1]))}")
        print(f"  {'policy':<16}{'mean reward':>12}{'std':>8}{'seconds':>9}")
        for policy, runner in runners.items():
            start = time.perf_counter()
            scores = [runner(*load(name, seed), seed) for seed in range(args.seeds)]
            figures[f"{name}_{policy}"] = round(float(np.mean(scores)), 4)
            print(f"  {policy:<16}{np.mean(scores):>12.4f}{np.std(scores):>8.4f}"
                  f"{time.perf_counter() - start:>9.1f}")
    if "digits" in args.datasets.split(","):
        ours = [k for k in cbserve_policies(1) if f"digits_{k}" in figures]
        best = max(ours, key=lambda k: figures[f"digits_{k}"])
        figures["digits_best"] = figures[f"digits_{best}"]
        figures["digits_best_policy"] = best
        print(f"\ndigits_best = {figures['digits_best']} ({best}); target >= 0.73; "
              f"VW squarecb peer {figures['digits_vw_squarecb']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
