"""Why a linear policy scored and weighted each action as it did: exact decompositions.

A linear policy's estimate of an action is θᵀx, and every column of x is a sum of
per-feature terms (:meth:`bandits.hashing.HashedSide.terms`): a context feature's, an
action feature's, and for a shared model each (context feature, action feature) pair's
share of the interaction sketch. So the estimate is exactly the intercept plus one
contribution per feature and per pair, each its value times its weight (the weight of
its bucket times its hash sign: signed hashing gives each feature a sign, so colliding
features do not add up systematically); two features hashed into one bucket each get
their own contribution and share the bucket's magnitude, which ``bucket`` shows. The score adds the exploration bonus
(LinUCB's α·width; ε-greedy and LinTS score the estimate itself), and the probability
is the greedy share (split over ties, or for LinTS the share of posterior draws the
action wins) plus the ε floor.

>>> from bandits import LinUCB
>>> p = LinUCB(alpha=0.5, epsilon=0.1, featurizer={"interaction_dim": 0})
>>> p.learn([{"context": {"u": {"fr": 1}}, "actions": [{"id": "a", "features": {"i": {"big": 1}}}],
...           "chosen": 0, "propensity": 1.0, "reward": 1.0}])
>>> out = explain(p, {"u": {"fr": 1}}, [{"id": "a", "features": {"i": {"big": 1}}}, "b"], top=2)
>>> a = out[0]
>>> round(a["intercept"] + sum(f["contribution"] for f in a["features"]) + a["rest"], 12) == round(a["mean"], 12)
True
>>> round(a["mean"] + a["bonus"], 12) == round(a["score"], 12), a["probability"]["epsilon_floor"]
(True, 0.05)
"""
from __future__ import annotations

import numpy as np

from .inputs import check_context, normalize_actions
from .linear import LinearPolicy

#: Contributions listed per action unless asked otherwise.
TOP = 10


def explains(policy) -> str | None:
    """None when :func:`explain` can decompose the policy's decisions, else the reason."""
    if isinstance(policy, LinearPolicy):
        return None
    return f"policy {policy.name!r} has no exact decomposition (linear policies have)"


def attributes(policy) -> str | None:
    """How the policy's decisions can be attributed when :func:`explain` cannot:
    ``"audit"`` (Vowpal Wabbit's own, :mod:`bandits.vw_audit`), ``"occlusion"`` (a
    Q-network, :mod:`bandits.attribution`, approximate), or None."""
    return {"vw": "audit", "qnetwork": "occlusion"}.get(getattr(policy, "name", None))


def explain(policy: LinearPolicy, context, actions, top: int = TOP, decision=None) -> list:
    """One explanation per action (request order): ``mean`` (θᵀx), ``intercept``, the
    ``top`` largest ``features`` by absolute contribution (kind, namespace, feature,
    value, weight: the feature's own, its bucket's times its hash sign; contribution =
    weight × value for a number, the weight for a string; bucket, shares_bucket),
    ``rest`` (the other contributions' sum), ``bonus``,
    ``score`` and ``probability`` (its parts). ``decision`` is the policy's decision for
    this request when the caller has it (else it is computed)."""
    context = check_context(context)
    pairs = normalize_actions(actions)
    if decision is None:
        decision = policy.decide(context, actions)
    ids = tuple(aid for aid, _ in pairs)
    f = policy.featurizer
    X = f.rows(context, pairs, policy._shared)
    theta, _ = policy._params(ids)
    thetas = np.broadcast_to(theta, X.shape) if policy._shared else theta
    means = np.einsum("kd,kd->k", X, thetas)
    ctx_terms = f._ctx.terms(context)
    parts = _probability_parts(policy, decision)
    bonus = getattr(policy, "alpha", 0.0) > 0.0
    out = []
    for k, (aid, feats) in enumerate(pairs):
        th = thetas[k]
        rows = _contributions(f, policy._shared, th, ctx_terms,
                              f._act.terms(feats, aid if f.action_id else None) if policy._shared else ())
        rows.sort(key=lambda r: -abs(r["contribution"]))
        _mark_collisions(rows)
        intercept = float(th[0]) if f.intercept else 0.0
        shown = rows[:top]
        rest = float(sum(r["contribution"] for r in rows[top:]))
        score = float(decision.scores[k])
        mean = float(means[k]) if bonus else score  # ε-greedy and LinTS score the estimate
        out.append({"id": aid, "mean": mean, "intercept": intercept, "features": shown,
                    "rest": rest, "bonus": score - mean, "score": score, "probability": parts[k]})
    return out


def _contributions(f, shared: bool, theta: np.ndarray, ctx_terms: list, act_terms) -> list:
    """Every feature's and (shared model) every pair's contribution to θᵀx."""
    c0 = int(f.intercept)
    rows = [_row("context", label, theta[c0 + i], sign, v, c0 + i) for label, i, sign, v, _, _ in ctx_terms]
    if not shared:
        return rows
    a0 = f.context_width
    rows += [_row("action", label, theta[a0 + i], sign, v, a0 + i) for label, i, sign, v, _, _ in act_terms]
    s = f.interaction_dim
    if s:
        i0 = a0 + f._act.width
        for clabel, _, _, cv, cj, ct in ctx_terms:
            for alabel, _, _, av, aj, at in act_terms:
                col = i0 + (cj + aj) % s
                label = ("×", f"{_name(clabel)} × {_name(alabel)}", None)
                rows.append(_row("interaction", label, theta[col], ct * at, cv * av, col))
    return rows


def _mark_collisions(rows: list) -> None:
    """``shares_bucket``: how many other features of the row hash into the same bucket
    (their weight is one, learned for all of them)."""
    count: dict = {}
    for r in rows:
        count[r["bucket"]] = count.get(r["bucket"], 0) + 1
    for r in rows:
        r["shares_bucket"] = count[r["bucket"]] - 1


def _name(label) -> str:
    ns, name, value = label
    return f"{ns}.{name}={value}" if isinstance(value, str) else f"{ns}.{name}"


def _row(kind, label, bucket_weight, sign, value, bucket) -> dict:
    """``weight`` is the feature's own: its bucket's weight times its hash sign."""
    ns, name, shown = label
    weight = float(bucket_weight * sign)
    return {"kind": kind, "namespace": ns, "feature": name, "value": shown, "weight": weight,
            "contribution": weight * float(value), "bucket": int(bucket)}


def _probability_parts(policy, decision) -> list:
    """Per action: ``{"value", "greedy", "epsilon_floor", "ties" or "draw_wins"}``."""
    pmf, scores = np.asarray(decision.pmf), np.asarray(decision.scores)
    k = len(pmf)
    eps = policy.current_epsilon() if hasattr(policy, "current_epsilon") else policy.epsilon
    floor = eps / k
    if policy.name == "lints":  # pmf = (1 − ε)·wins + ε/K: the draws each action wins
        return [{"value": float(p), "greedy": float(p - floor), "epsilon_floor": floor,
                 "draw_wins": float((p - floor) / (1.0 - eps)) if eps < 1 else 0.0} for p in pmf]
    top = scores.max()
    ties = int((scores == top).sum())
    return [{"value": float(p), "greedy": (1.0 - eps) / ties if scores[i] == top else 0.0,
             "epsilon_floor": floor, "ties": ties if scores[i] == top else 0} for i, p in enumerate(pmf)]
