"""Simulated logs in the service's own DSJSON, for tests, demos and benchmarks.

A logging policy acts in a :class:`bandits.environments.LinearStream`; each decision
is written exactly as the service writes it (:func:`bandits.dsjson.decision_event`,
then :func:`bandits.dsjson.with_label` once rewarded), so readers see real logs.
"""
from __future__ import annotations

import gzip

import numpy as np

from bandits import Feedback, sample_index
from bandits import dsjson


def simulate_log(env, policy, rounds: int, seed: int = 0, loop: str = "sim",
                 learn: bool = True, start_s: float = 1.7e9) -> list:
    """Labelled DSJSON events of ``rounds`` decisions by ``policy`` in ``env``."""
    events = []
    for t in range(rounds):
        ctx, x = env.context()
        decision = policy.decide(ctx, env.actions)
        event_id = f"{loop}-{seed}-{t}"
        k = sample_index(decision.pmf, seed, event_id)
        reward = env.reward(k, x)
        pairs = [(a["id"], a["features"]) for a in env.actions]
        order = [k] + [i for i in decision.ranking() if i != k]
        event = dsjson.decision_event(loop=loop, event_id=event_id, epoch_s=start_s + t,
                                      context=ctx, actions=pairs, order=order, pmf=decision.pmf,
                                      policy=decision.policy, version=0, deferred=False)
        events.append(dsjson.with_label(event, reward))
        if learn:
            policy.learn([Feedback(ctx, env.actions, k, float(decision.pmf[k]), reward)])
    return events


def true_value(env, policy, contexts: int = 20000, seed: int = 12345) -> float:
    """A frozen policy's expected reward in ``env`` over fresh contexts (Monte Carlo on
    the known expected rewards, no reward noise)."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(contexts):
        x = rng.normal(size=env.n_features)
        total += float(policy.decide(env.as_context(x), env.actions).pmf @ env.expected(x))
    return total / contexts


def write_dsjson(events, path: str) -> None:
    """One event per line; gzip when the name ends in ``.gz`` (as ``cbserve export``)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as fh:
        for event in events:
            fh.write(dsjson.dumps(event) + b"\n")
