"""Explanations of a Vowpal Wabbit policy from VW's own audit (``--audit``).

VW's audit prints, for each action example it predicts, the cost it predicts (clipped
to the range of costs it has learned from) and every feature it used, interactions
included, as ``name:hash:value:weight``. The policy's estimate of an action's reward is
minus the cost, so each feature contributes −value × weight, and the contributions sum
to minus the unclipped cost (to VW's float precision). The audit goes to the process's
standard output; it is read back through a temporary file put in place of descriptor 1
for the prediction, under a lock (another thread writing to standard output at that
moment would have its lines dropped).

Names: context namespaces are VW's ``s<name>``, action namespaces ``a<name>``, the
action id ``a_id`` (:mod:`bandits.vw`); ``Constant`` is the intercept; ``x*y`` is an
interaction.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading

from .errors import VWError
from .inputs import normalize_actions

_CAPTURE = threading.Lock()


def captured_stdout(fn):
    """``(fn(), text fn wrote to descriptor 1)``."""
    with _CAPTURE, tempfile.TemporaryFile() as tmp:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(tmp.fileno(), 1)
        try:
            out = fn()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        return out, tmp.read().decode("utf-8", "replace")


def parse_audit(text: str) -> list:
    r"""``[(clipped cost, [(name, value, weight)])]`` per predicted example; an example
    without features (VW prints its cost and an empty line) has an empty list.

    >>> parse_audit("-0.5\n\tConstant:116060:1:-0.1\tsuser^x:68177:2:-0.2@0.16\n0\n\n")
    [(-0.5, [('Constant', 1.0, -0.1), ('suser^x', 2.0, -0.2)]), (0.0, [])]
    """
    out, lines = [], text.split("\n")
    i = 0
    while i + 1 < len(lines):
        head, body = lines[i], lines[i + 1]
        try:
            cost = None if not head or head.startswith("\t") else float(head.split()[0])
        except ValueError:
            cost = None
        if cost is None or not (body == "" or body.startswith("\t")):
            i += 1
            continue
        feats = []
        for item in body.strip("\t").split("\t") if body else ():
            name, _, value, weight = item.rsplit(":", 3)
            feats.append((name, float(value), float(weight.split("@")[0])))
        out.append((cost, feats))
        i += 2
    return out


def label(name: str) -> dict:
    """What an audit name stands for.

    >>> label("suser^age"), label("a_id^item-1")["kind"], label("suser^x*aitem^p")["kind"]
    ({'kind': 'context', 'namespace': 'user', 'feature': 'age'}, 'action', 'interaction')
    """
    if name == "Constant":
        return {"kind": "intercept", "namespace": None, "feature": "Constant"}
    if "*" in name:
        return {"kind": "interaction", "namespace": "×",
                "feature": " × ".join(_plain(part) for part in name.split("*"))}
    ns, _, feature = name.partition("^")
    if ns == "a_id":
        return {"kind": "action", "namespace": "_id", "feature": feature}
    kind = {"s": "context", "a": "action"}.get(ns[:1], "other")
    return {"kind": kind, "namespace": ns[1:], "feature": feature}


def _plain(name: str) -> str:
    info = label(name)
    return f"{info['namespace']}.{info['feature']}"


def explain_vw(policy, context, actions, top: int = 10, decision=None) -> list:
    """Per action (request order): ``mean`` (−Σ value × weight: VW's reward estimate),
    ``clipped`` (minus the cost VW predicted, clipped), ``intercept``, the ``top``
    ``features`` by absolute contribution, ``rest``, and the probability (VW's pmf
    with the policy's floor)."""
    pairs = normalize_actions(actions)
    if decision is None:
        decision = policy.decide(context, actions)
    ws = policy.audit_workspace()
    lines = ["shared " + (policy._namespaces("s", context, "context") or "|s")]
    lines += [policy._action_text(aid, feats, i) for i, (aid, feats) in enumerate(pairs)]
    examples = ws.parse(lines)
    try:
        _, text = captured_stdout(lambda: ws.predict(examples))
    finally:
        ws.finish_example(examples)
    audits = parse_audit(text)
    if len(audits) < len(pairs):
        raise VWError(f"Vowpal Wabbit's audit described {len(audits)} examples for "
                      f"{len(pairs)} actions")
    audits = audits[-len(pairs):]
    out = []
    for (aid, _), (cost, feats), p in zip(pairs, audits, decision.pmf):
        rows = [{**label(name), "value": value, "weight": weight, "contribution": -value * weight}
                for name, value, weight in feats]
        intercept = sum(r["contribution"] for r in rows if r["kind"] == "intercept")
        rows = sorted((r for r in rows if r["kind"] != "intercept"), key=lambda r: -abs(r["contribution"]))
        mean = intercept + sum(r["contribution"] for r in rows)
        out.append({"id": aid, "mean": mean, "clipped": -cost, "intercept": intercept,
                    "features": rows[:top], "rest": sum(r["contribution"] for r in rows[top:]),
                    "bonus": 0.0, "score": float(p),
                    "probability": {"value": float(p), "vw": float((p - policy.floor / len(pairs))
                                                                   / (1.0 - policy.floor)),
                                    "floor": policy.floor / len(pairs)}})
    return out
