"""The decision log format: Vowpal Wabbit's decision-service JSON (DSJSON), plus
cbserve's own fields beside it (VW ignores keys it does not know).

One decision::

    {"EventId": "…", "Timestamp": "2026-11-21T20:18:21.052000Z", "Version": "1",
     "c": {<context namespaces>, "_multi": [<features of action 1>, …]},
     "a": [3, 1, 2, 4], "p": [0.85, 0.05, 0.05, 0.05],
     "loop": "recs", "ActionIds": ["item-1", …], "deferred": false,
     "policy": {"name": "linucb", "version": 7}}

A step of a sequential loop adds ``"session_id"`` and ``"step"`` (0-based), and its
context carries the session state the policy saw under ``"_session"``.

``a`` holds 1-based action indices, the chosen one first; ``p`` their probabilities in
the same order (the full pmf). Once rewarded, :func:`with_label` adds VW's label fields
(``_label_cost`` = −reward, ``_label_probability``, ``_label_Action``, ``_labelIndex``)
and the outcome ``o``. Pure functions: no I/O.
"""
from __future__ import annotations

import datetime as _dt

import orjson

from bandits import Feedback

VERSION = "1"


def timestamp(epoch_s: float) -> str:
    """UTC ISO-8601 with microseconds and a ``Z``."""
    moment = _dt.datetime.fromtimestamp(epoch_s, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decision_event(*, loop, event_id, epoch_s, context, actions, order, pmf, policy,
                   version, deferred, session=None) -> dict:
    """The DSJSON object of one decision.

    ``actions`` are the validated ``[(id, features)]`` pairs in request order, ``order``
    the action indices with the chosen one first, ``pmf`` their probabilities (aligned
    with ``actions``). A step of a sequential loop (``session``: its state) also
    carries ``session_id`` and ``step``; its context holds the state under ``_session``.
    """
    c = dict(context)
    c["_multi"] = [feats for _, feats in actions]
    event = {"EventId": event_id, "Timestamp": timestamp(epoch_s), "Version": VERSION, "c": c,
            "a": [i + 1 for i in order], "p": [float(pmf[i]) for i in order], "loop": loop,
            "ActionIds": [aid for aid, _ in actions], "deferred": bool(deferred),
            "policy": {"name": policy, "version": int(version)}}
    if session is not None:
        event["session_id"], event["step"] = session.session_id, session.step
    return event


def dumps(event: dict) -> bytes:
    """Compact UTF-8 JSON of an event (orjson: a decision is logged on every request)."""
    return orjson.dumps(event)


def loads(data: bytes | str) -> dict:
    return orjson.loads(data)


def chosen(event: dict) -> tuple:
    """``(index, propensity)`` of the logged action (0-based index)."""
    return event["a"][0] - 1, float(event["p"][0])


def with_label(event: dict, reward: float, kind: str = "reward") -> dict:
    """A copy of the event carrying VW's label fields for ``reward``."""
    index, prob = chosen(event)
    out = dict(event)
    out.update({"_label_cost": -float(reward), "_label_probability": prob,
                "_label_Action": index + 1, "_labelIndex": index,
                "o": [{"v": float(reward), "EventId": event["EventId"], "kind": kind}]})
    return out


def to_feedback(event: dict, reward: float) -> Feedback:
    """The :class:`bandits.Feedback` a policy learns from this logged decision."""
    context = {k: v for k, v in event["c"].items() if k != "_multi"}
    actions = [{"id": aid, "features": feats}
               for aid, feats in zip(event["ActionIds"], event["c"]["_multi"])]
    index, prob = chosen(event)
    return Feedback(context, actions, index, prob, float(reward))
