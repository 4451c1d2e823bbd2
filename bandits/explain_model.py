"""What a linear policy has learned, in feature names: its largest weights and their spread.

A hashed model keeps weights per bucket, not per name. The names come from traffic:
:func:`bucket_names` featurizes decisions (the recent log, say) and records which
features (and, for a shared model, which context × action pairs) land in each column,
at most :data:`NAMES_PER_BUCKET` names per column with a count of the others, so a
collision shows as several names on one weight. :func:`summary` then lists the columns
with the largest weights, each with the names seen there, each name's own weight (the
column's times the name's hash sign: signed hashing gives colliding names opposite
signs half the time) and the column's ``std``: √(A⁻¹)ⱼⱼ, the ridge posterior's
standard deviation of the weight in units of the reward noise σ (a weight several
times its ``std`` is well determined). Pure: no I/O.

>>> from bandits import EpsilonGreedy
>>> p = EpsilonGreedy(featurizer={"interaction_dim": 0, "action_id": False})
>>> p.learn([{"context": {"u": {"fr": 1}}, "actions": [{"id": "a", "features": {"i": {"big": 1}}}],
...           "chosen": 0, "propensity": 1.0, "reward": 1.0}] * 20)
>>> names = bucket_names(p, [({"u": {"fr": 1}}, [("a", {"i": {"big": 1}})])])
>>> top = summary(p, names, top=3)["global"]
>>> sorted({f["name"] for row in top for f in row["features"]})
['(intercept)', 'i.big', 'u.fr']
>>> all(f["weight"] > 0 for row in top for f in row["features"])  # every one earned reward
True
"""
from __future__ import annotations

import numpy as np

from .errors import BanditError
from .explain import _name
from .linear import SHARED_ARM, LinearPolicy

#: Names kept per column (the rest are counted).
NAMES_PER_BUCKET = 5


def bucket_names(policy: LinearPolicy, requests, limit: int = NAMES_PER_BUCKET) -> dict:
    """``{column: {"kind", "names": {name: hash sign}, "more": n}}`` from ``requests``, an
    iterable of ``(context, [(id, features)])``; a request the policy's featurizer
    refuses (logged under another featurizer) is skipped, counted under the key
    ``"refused"``."""
    f, shared = policy.featurizer, policy._shared
    out: dict = {"refused": 0}

    def add(col, kind, name, sign):
        row = out.setdefault(int(col), {"kind": kind, "names": {}, "more": 0})
        if name in row["names"]:
            return
        if len(row["names"]) < limit:
            row["names"][name] = sign
        else:
            row["more"] += 1

    c0, a0 = int(f.intercept), f.context_width
    if f.intercept:
        add(0, "intercept", "(intercept)", 1.0)
    for context, pairs in requests:
        try:
            f.rows(context, pairs, shared)  # validates as the policy would
            ctx = f._ctx.terms(context)
            acts = [f._act.terms(feats, aid if f.action_id else None) for aid, feats in pairs] if shared else []
        except (BanditError, LookupError, TypeError, ValueError):
            out["refused"] += 1
            continue
        for label, i, sign, _, _, _ in ctx:
            add(c0 + i, "context", _name(label), sign)
        for act in acts:
            for label, i, sign, _, _, _ in act:
                add(a0 + i, "action", _name(label), sign)
            if f.interaction_dim:
                i0, s = a0 + f._act.width, f.interaction_dim
                for clabel, _, _, _, cj, ct in ctx:
                    for alabel, _, _, _, aj, at in act:
                        add(i0 + (cj + aj) % s, "interaction", f"{_name(clabel)} × {_name(alabel)}", ct * at)
    return out


def summary(policy: LinearPolicy, names: dict, top: int = 20) -> dict:
    """``{"model", "global": [...]}`` for a shared model, ``{"model", "actions": {id:
    [...]}}`` for a disjoint one: each list the ``top`` columns by absolute weight with
    ``bucket``, ``kind``, ``weight``, ``std``, ``names`` and ``more``."""
    bank = policy.bank_
    if policy._shared:
        return {"model": "shared", "events": int(bank.counts_.sum()),
                "global": _top(bank.theta_[0], bank.A_inv_[0], names, top)}
    arms = {aid: _top(bank.theta_[i], bank.A_inv_[i], names, top)
            for i, aid in enumerate(bank.arm_ids_) if aid != SHARED_ARM}
    return {"model": "disjoint", "events": int(bank.counts_.sum()), "actions": arms}


def _top(theta, A_inv, names, top) -> list:
    order = np.argsort(-np.abs(theta), kind="stable")[:top]
    std = np.sqrt(np.maximum(np.diag(A_inv), 0.0))
    rows = []
    for col in order.tolist():
        seen = names.get(col, {"kind": "unseen", "names": {}, "more": 0})
        w = float(theta[col])
        rows.append({"bucket": col, "kind": seen["kind"], "bucket_weight": w, "std": float(std[col]),
                     "features": [{"name": n, "weight": w * sign} for n, sign in seen["names"].items()],
                     "more": seen["more"]})
    return rows
