"""Approximate attributions for a Q-network policy: occlusion over its state vector.

A network's Q-values have no exact additive decomposition; occlusion asks, for each
entry of the state vector (:class:`bandits.state.StateEncoder`: the listed context
features, the step, each remembered step's action and reward), how much each action's
Q-value drops when that entry is set to 0, the encoder's value for "absent":
``Q_k(x) − Q_k(x with xᵢ = 0)``. For a network that is linear in its input this is
exactly wᵢₖ·xᵢ and the attributions sum to Q − Q(0); through ReLUs they need not sum
to anything, so they are reported as approximate. Entries already 0 get 0. Pure.
"""
from __future__ import annotations

import numpy as np


def state_names(encoder) -> list:
    """A name for each entry of the encoder's state vector, in order."""
    names = [f"{ns}.{name}" for ns, name in encoder.features]
    if encoder.step:
        names.append("step")
    for h in range(encoder.history):
        names += [f"history[{h}].action={aid}" for aid in encoder.action_ids]
        names.append(f"history[{h}].reward")
    return names


def occlusion(policy, context, actions, top: int = 10, decision=None) -> list:
    """Per action (request order): ``q``, ``q_without_state`` (Q at the all-zero state),
    the ``top`` state entries by absolute attribution (name, value, attribution), and
    the probability's parts; ``approximate`` is true."""
    from .inputs import normalize_actions

    pairs = normalize_actions(actions)
    if decision is None:
        decision = policy.decide(context, actions)
    x = policy.encoder.encode(context)
    idx = [policy._index[aid] for aid, _ in pairs]
    occluded = np.repeat(x[None, :], len(x) + 1, axis=0)
    occluded[np.arange(len(x)), np.arange(len(x))] = 0.0
    occluded[-1] = 0.0
    q = policy.q_values(np.vstack([x[None, :], occluded]))[:, idx]   # (1 + d + 1, K)
    full, drops, base = q[0], q[0] - q[1:-1], q[-1]
    names = state_names(policy.encoder)
    eps, k = policy.epsilon, len(idx)
    top_q = full.max()
    ties = int((full == top_q).sum())
    out = []
    for j, (aid, _) in enumerate(pairs):
        order = np.argsort(-np.abs(drops[:, j]), kind="stable")[:top]
        greedy = (1.0 - eps) / ties if full[j] == top_q else 0.0
        out.append({"id": aid, "q": float(full[j]), "q_without_state": float(base[j]), "approximate": True,
                    "features": [{"feature": names[i], "value": float(x[i]),
                                  "attribution": float(drops[i, j])} for i in order.tolist()],
                    "probability": {"value": float(decision.pmf[j]), "greedy": greedy,
                                    "epsilon_floor": eps / k, "ties": ties if full[j] == top_q else 0}})
    return out
