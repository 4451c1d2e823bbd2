"""Coverage of the 95% intervals on simulated logs whose true policy values are known.

Contexts are drawn from 40 types with known mean rewards, so each target's value is
exact: V = mean over types of Σ_k π(k|m) μ(k|m). The reward model given to DR is
deliberately wrong (true means plus a fixed error of sd 0.15), as real ones are.
Each repetition draws a fresh log of 2,000 rounds (seeds 0..99).
"""
import numpy as np
import pytest

from replay.estimators import dr, snips

M, K, N, REPS = 40, 5, 2000, 100
WORLD = np.random.default_rng(2024)
MEANS = WORLD.uniform(0.1, 0.9, (M, K))                     # μ(k|m), Bernoulli rewards
LOGGER = 0.7 * WORLD.dirichlet(np.ones(K), M) + 0.3 / K     # every action ≥ 0.06
Q_HAT = np.clip(MEANS + WORLD.normal(0.0, 0.15, (M, K)), 0.0, 1.0)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


TARGETS = {
    "near-greedy": 0.9 * np.eye(K)[MEANS.argmax(axis=1)] + 0.1 / K,
    "uniform": np.full((M, K), 1.0 / K),
    "softmax-other": softmax(3.0 * WORLD.normal(size=(M, K))),
}


def log(seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(0, M, N)
    a = (LOGGER[m].cumsum(axis=1) > rng.random((N, 1))).argmax(axis=1)
    r = (rng.random(N) < MEANS[m, a]).astype(float)
    return m, a, r


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_snips_and_dr_intervals_cover_the_truth(target):
    pi = TARGETS[target]
    truth = float((pi * MEANS).sum(axis=1).mean())
    covered = {"snips": 0, "dr": 0}
    for seed in range(REPS):
        m, a, r = log(seed)
        args = dict(rewards=r, propensities=LOGGER[m, a], target_probs=pi[m, a],
                    q_hat=Q_HAT[m], target_pmf=pi[m], actions=a)
        for name, fn in (("snips", snips), ("dr", dr)):
            est = fn(**args)
            covered[name] += est.low <= truth <= est.high
    assert covered["snips"] >= 90, covered
    assert covered["dr"] >= 90, covered
