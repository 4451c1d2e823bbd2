"""The rank workload the benchmarks share: realistic bodies, as JSON-decoded objects.

K = :data:`K` candidates drawn from 500 items (8 features each: 5 numeric, 3
categorical), contexts of 32 features (23 numeric user features drawn from 2,000
users, 1 numeric per-request session feature, 8 categorical). Every context is new
(the session feature differs), so no context memo can help; items repeat, as a
catalogue does.
"""
from __future__ import annotations

import copy
import json

import numpy as np

#: Candidates per request.
K = 20


def workload(n_requests: int, seed: int = 0) -> list:
    """``[(context, actions, chosen, reward)]``, one JSON-decoded copy per request."""
    rng = np.random.default_rng(seed)
    users = [{"user": {f"u{i}": round(float(v), 4) for i, v in enumerate(rng.normal(size=23))},
              "geo": {f"g{i}": f"v{int(rng.integers(20))}" for i in range(8)}} for _ in range(2000)]
    items = [{"id": f"item-{j}", "features": {"item": {
        **{f"n{i}": round(float(v), 4) for i, v in enumerate(rng.normal(size=5))},
        **{f"c{i}": f"c{int(rng.integers(10))}" for i in range(3)}}}} for j in range(500)]
    out = []
    for _ in range(n_requests):
        ctx = copy.deepcopy(users[int(rng.integers(len(users)))])
        ctx["user"]["session_minutes"] = round(float(rng.exponential(10.0)), 6)
        actions = copy.deepcopy([items[j] for j in rng.choice(len(items), K, replace=False)])
        out.append((ctx, actions, int(rng.integers(K)), float(rng.random() < 0.3)))
    return [tuple(json.loads(json.dumps(r))) for r in out]
