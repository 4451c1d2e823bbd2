"""Simulated slate logs with a known true value, to check the slate estimators' intervals.

A position-biased click model: a user of type u (uniform over ``n_users`` types) clicks
slot j, showing action a, with probability relevance(u, a) · examination(j), independently
of the other slots; a slot's reward is its click and the slate's is the number of clicks.
The reward is additive and each slot's depends on its own action only, so every slate
estimator of :mod:`replay.slates` is unbiased here (IIPS and the pseudo-inverse
included). Relevances are drawn with a seed; examination falls with the position.

The logger is an ε-greedy slate policy on a noisy copy of the relevances (each slot:
1 − ε on the best action not shown yet, ε spread over all of them); the target is a
softmax slate policy on the true relevances. Every probability the estimators need
(conditional, marginal, second moment) and the true value come from enumerating the
slates of each user type (:mod:`replay.slate_marginals`);
:func:`replay.slates.slate_ci_coverage` runs the estimators on many such logs. Pure:
numpy only.

>>> import numpy as np
>>> world = make_world(seed=1)
>>> log = simulate_slates(world, 1000, np.random.default_rng(0))
>>> log["rewards"].shape, log["logging_second_moment"].shape, 0.0 < world.true_value < 2.0
((1000, 2), (1000, 10, 10), True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .slate_marginals import enumerate_slates, slate_marginals

#: Examination probability of each position (top first), for up to 4 slots.
EXAMINATION = (1.0, 0.7, 0.5, 0.35)


def epsilon_greedy_slate(scores, epsilon: float):
    """``pmf_fn(j, earlier)``: 1 − ε on the best-scored action not shown yet, ε spread
    uniformly over all of those.

    >>> import numpy as np
    >>> epsilon_greedy_slate(np.array([0.1, 0.9, 0.5]), 0.3)(1, (1,)).round(2).tolist()
    [0.15, 0.0, 0.85]
    """
    scores = np.asarray(scores, dtype=np.float64)

    def pmf_fn(j, earlier):
        free = np.ones(scores.size, dtype=bool)
        free[list(earlier)] = False
        pmf = free * (epsilon / free.sum())
        pmf[np.flatnonzero(free)[np.argmax(scores[free])]] += 1.0 - epsilon
        return pmf
    return pmf_fn


def softmax_slate(scores, temperature: float):
    """``pmf_fn(j, earlier)``: softmax(scores / temperature) over the actions not shown yet."""
    scores = np.asarray(scores, dtype=np.float64)

    def pmf_fn(j, earlier):
        z = np.exp((scores - scores.max()) / temperature)
        z[list(earlier)] = 0.0
        return z / z.sum()
    return pmf_fn


@dataclass(frozen=True)
class SlateWorld:
    """The click model (``examination`` (L,), ``relevance`` (U, m)); per user type u,
    ``users[u]`` holds the logger's slates (S_u, L), their cumulative probabilities, the
    conditional and marginal probabilities of both policies along each, q_π, Γ_μ and the
    expected clicks; ``true_value`` is the target's expected clicks per slate."""

    examination: np.ndarray
    relevance: np.ndarray
    users: list
    true_value: float


def make_world(n_users: int = 4, n_actions: int = 5, n_slots: int = 2, epsilon: float = 0.5,
               temperature: float = 0.2, seed: int = 0) -> SlateWorld:
    """A click model, its logger and target, enumerated per user type."""
    rng = np.random.default_rng(seed)
    relevance = rng.uniform(0.05, 0.6, size=(n_users, n_actions))
    noisy = relevance + rng.normal(0.0, 0.15, size=relevance.shape)
    exam = np.array(EXAMINATION[:n_slots])
    users, values = [], []
    for u in range(n_users):
        logger = epsilon_greedy_slate(noisy[u], epsilon)
        target = softmax_slate(relevance[u], temperature)
        slates, probs = enumerate_slates(logger, n_slots)
        mu_m, pi_m = (slate_marginals(f, n_slots, n_actions) for f in (logger, target))
        t_slates, t_probs = enumerate_slates(target, n_slots)
        values.append(float(t_probs @ (relevance[u][t_slates] * exam).sum(axis=1)))
        cols = np.arange(n_slots)
        users.append({
            "slates": slates, "cdf": np.cumsum(probs),
            "propensities": _along(logger, slates), "target_probs": _along(target, slates),
            "logging_marginals": mu_m.marginals[cols, slates],
            "target_marginals": pi_m.marginals[cols, slates],
            "target_slot_marginals": pi_m.marginals, "logging_second_moment": mu_m.second_moment,
            "clicks": relevance[u][slates] * exam})
    return SlateWorld(exam, relevance, users, float(np.mean(values)))


def _along(pmf_fn, slates) -> np.ndarray:
    """The conditional probability of each slot's action given the slate's earlier ones."""
    return np.array([[pmf_fn(j, tuple(s[:j]))[s[j]] for j in range(len(s))]
                     for s in slates.tolist()])


def simulate_slates(world: SlateWorld, rounds: int, rng) -> dict:
    """One logged sample of ``rounds`` slates: the slate estimators' keyword arrays."""
    user = rng.integers(len(world.users), size=rounds)
    out = {}
    for u, data in enumerate(world.users):
        rows = np.flatnonzero(user == u)
        pick = np.minimum(np.searchsorted(data["cdf"], rng.random(rows.size) * data["cdf"][-1]),
                          len(data["cdf"]) - 1)
        for key, value in data.items():
            if key in ("cdf", "target_slot_marginals", "logging_second_moment"):
                part = np.broadcast_to(value, (rows.size, *value.shape))
            else:
                part = value[pick]
            out.setdefault(key, np.empty((rounds, *part.shape[1:]), part.dtype))[rows] = part
    clicks = out.pop("clicks")
    out.pop("cdf")
    out["rewards"] = (rng.random(clicks.shape) < clicks).astype(np.float64)
    return out
