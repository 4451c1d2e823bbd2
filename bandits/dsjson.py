"""The decision log layout: Vowpal Wabbit's decision-service JSON (DSJSON), written so
VW learns from it, and read back exactly as cbserve decided on it. Pure: no I/O.

One rewarded decision, in the order VW's parser needs (the label before ``c``)::

    {"_label_cost": -1.0, "_label_probability": 0.85, "_label_Action": 3, "_labelIndex": 2,
     "o": [{"v": 1.0, "EventId": "…", "kind": "reward"}],
     "Timestamp": "2026-11-21T20:18:21.052000Z", "Version": "1", "EventId": "…",
     "a": [3, 1, 2], "c": {"user": {"country": "FR", "tags": {"runner": 1}},
                           "_multi": [{"item": {"price": 3.0}, "a_id": {"item-1": 1}}, …]},
     "p": [0.85, 0.075, 0.075],
     "loop": "recs", "ActionIds": ["item-1", …], "deferred": false,
     "policy": {"name": "linucb", "version": 7},
     "orig": {"context": {"user": {"tags": ["runner"]}, "_session": {…}}}}

What VW sees in ``c`` differs from the request in three ways, each undone by
:func:`decode` so the learner and replay see exactly what the policy decided on:

- a bag (list of strings) is written ``{"item": count}``, which VW reads as one
  feature per string (it drops a line holding a list of strings);
- metadata keys (``_x``, at the top or inside a namespace) leave ``c``, where VW gives
  such names a meaning (``_tag``, ``_label*``, ``_slot_id``, ``_text`` …);
- every action carries its id as the feature ``a_id: {<id>: 1}``, so actions of a
  loop with fixed, featureless actions are not identical to VW.

``orig`` (beside ``c``, where VW ignores it; present only when needed) holds the
original value of every key the first two rules changed, and of an action namespace
named ``a_id``: ``{"context": {...}, "actions": {"<index>": {...}}}``. A step of a
sequential loop adds ``session_id`` and ``step``, its session state is the context's
``_session`` key. ``a`` holds 1-based action indices, the chosen one first, ``p`` their
probabilities (the full pmf). :func:`with_label` adds VW's label fields and ``o``.

Examples
--------
>>> event = decision_event(loop="l", event_id="e1", epoch_s=0.0,
...     context={"u": {"tags": ["a", "b", "a"], "_debug": 1}, "_session": {"step": 0}},
...     actions=[("x", {}), ("y", {"i": {"p": 2}})], order=[1, 0], pmf=[0.25, 0.75],
...     policy="linucb", version=3, deferred=False)
>>> event["c"]
{'u': {'tags': {'a': 2, 'b': 1}}, '_multi': [{'a_id': {'x': 1}}, {'i': {'p': 2}, 'a_id': {'y': 1}}]}
>>> context, pairs = decode(loads(dumps(event)))
>>> context == {"u": {"tags": ["a", "b", "a"], "_debug": 1}, "_session": {"step": 0}}
True
>>> pairs
[('x', {}), ('y', {'i': {'p': 2}})]
>>> list(with_label(event, 1.0))[:5]
['_label_cost', '_label_probability', '_label_Action', '_labelIndex', 'o']
"""
from __future__ import annotations

import datetime as _dt

import orjson

from .errors import LogFormatError
from .types import Feedback

VERSION = "1"
#: The action namespace holding each action's id as a feature.
ID_NAMESPACE = "a_id"
#: cbserve's field (beside ``c``) with the originals of what VW's form changed.
ORIG = "orig"
#: Actions memoised by id in :func:`decision_event`'s ``memo`` before it is cleared.
MEMO_LIMIT = 20_000
#: JSON text of memoised features before the memo is cleared: bounds its memory when
#: the actions are large (the memo holds about ten times this in Python objects).
MEMO_BYTES = 4_000_000
_SIZE = object()  # the memo's key for the bytes of text it holds
_LABEL_KEYS = ("_label_cost", "_label_probability", "_label_Action", "_labelIndex", "o")


def timestamp(epoch_s: float) -> str:
    """UTC ISO-8601 with microseconds and a ``Z``."""
    moment = _dt.datetime.fromtimestamp(epoch_s, _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decision_event(*, loop, event_id, epoch_s, context, actions, order, pmf, policy,
                   version, deferred, session=None, memo=None) -> dict:
    """The DSJSON object of one decision.

    ``actions`` are the validated ``[(id, features)]`` pairs in request order, ``order``
    the action indices with the chosen one first, ``pmf`` their probabilities (aligned
    with ``actions``). A step of a sequential loop (``session``: its state) also
    carries ``session_id`` and ``step``. ``memo`` (a dict the caller keeps for a loop's
    fixed actions) holds each action's VW form by id, used while the action's features
    are the very same object: fixed actions are converted once.
    """
    c, orig_context = vw_object(context)
    multi, orig_actions = _vw_actions(actions, {} if memo is None else memo)
    c = dict(c)
    c["_multi"] = multi
    event = {"Timestamp": timestamp(epoch_s), "Version": VERSION, "EventId": event_id,
             "a": [i + 1 for i in order], "c": c, "p": [float(pmf[i]) for i in order],
             "loop": loop, "ActionIds": [aid for aid, _ in actions], "deferred": bool(deferred),
             "policy": {"name": policy, "version": int(version)}}
    if session is not None:
        event["session_id"], event["step"] = session.session_id, session.step
    if orig_context or orig_actions:
        event[ORIG] = {k: v for k, v in (("context", orig_context), ("actions", orig_actions)) if v}
    return event


def _vw_actions(actions, memo) -> tuple:
    """``(c._multi, orig actions)``: each action's VW form with its id feature.

    ``memo`` keeps each id's form with its features and their JSON text: a hit is the
    very same features object, or features of the same JSON text (the same values of
    the same types: 1, 1.0 and true stay apart, as the log keeps them)."""
    multi, orig = [], {}
    if len(memo) + len(actions) > MEMO_LIMIT or memo.get(_SIZE, 0) > MEMO_BYTES:
        memo.clear()
    for index, (aid, feats) in enumerate(actions):
        hit = memo.get(aid)
        if hit is None or hit[0] is not feats:
            text = _text(feats)
            if hit is None or text is None or hit[3] != text:
                item, restore = vw_object(feats)
                if ID_NAMESPACE in feats:  # the caller's own namespace of that name
                    restore = {**(restore or {}), ID_NAMESPACE: feats[ID_NAMESPACE]}
                item = {**item, ID_NAMESPACE: {aid: 1}}
                hit = (feats, item, restore, text)
                if text is not None:
                    memo[aid] = hit
                    memo[_SIZE] = memo.get(_SIZE, 0) + len(text)
        multi.append(hit[1])
        if hit[2]:
            orig[str(index)] = hit[2]
    return multi, orig


def _text(feats: dict) -> bytes | None:
    """The JSON text of an action's features, None when JSON cannot hold them."""
    try:
        return orjson.dumps(feats)
    except TypeError:  # orjson.JSONEncodeError: a value JSON has no form for
        return None


def vw_object(obj: dict) -> tuple:
    """``(VW form, restore)`` of a context or an action's features: bags as counts,
    ``_`` keys left out; ``restore`` (or None) maps each changed key to its original.
    Returns ``obj`` itself when nothing changes (the common case: no copy)."""
    out = restore = None
    for key, value in obj.items():
        kind = type(value)
        if type(key) is str and key[:1] == "_":
            new = _DROP
        elif kind is dict:
            new, inner = vw_object(value)
            if inner is None:
                continue
            value = inner
        elif kind is list and _is_bag(value):
            new = bag_counts(value)
        else:
            continue
        if out is None:
            out, restore = dict(obj), {}
        restore[key] = value
        if new is _DROP:
            del out[key]
        else:
            out[key] = new
    return (obj, None) if out is None else (out, restore)


_DROP = object()


def _is_bag(value: list) -> bool:
    return bool(value) and all(type(v) is str for v in value)


def bag_counts(bag: list) -> dict:
    """A bag as VW reads it, one feature per distinct string: ``{string: count}``."""
    counts: dict = {}
    for item in bag:
        counts[item] = counts.get(item, 0) + 1
    return counts


def restored(obj: dict, restore: dict | None) -> dict:
    """``obj`` with the original values of ``restore`` put back (inverse of
    :func:`vw_object`); a namespace's changed features are merged into it."""
    if not restore:
        return obj
    out = dict(obj)
    for key, value in restore.items():
        current = out.get(key)
        if type(value) is dict and type(current) is dict and str(key)[:1] != "_":
            out[key] = restored(current, value)
        else:
            out[key] = value
    return out


def decode(event: dict, own: bool = False) -> tuple:
    """``(context, [(id, features)])`` exactly as the policy decided on them.

    Works on cbserve's logs (ids from ``ActionIds``, ``orig`` put back, the id
    feature taken off) and on VW's own (ids ``"1"``..``"K"`` by position). Leaves
    ``event`` as it was unless ``own`` (the caller's to change: faster). Raises
    :class:`~bandits.errors.LogFormatError` naming the field that is not as written.
    """
    c = event.get("c")
    multi = c.get("_multi") if type(c) is dict else None
    if type(multi) is not list:
        raise LogFormatError("c._multi: must be a list of action feature objects")
    context = c if own else dict(c)
    del context["_multi"]
    ids = event.get("ActionIds")
    if ids is None:
        ids = [str(i + 1) for i in range(len(multi))]
    elif type(ids) is not list or len(ids) != len(multi) or not all(type(i) is str for i in ids):
        raise LogFormatError(f"ActionIds: must be {len(multi)} strings, one per c._multi item")
    pairs = []
    for index, (aid, feats) in enumerate(zip(ids, multi)):
        if type(feats) is not dict:
            raise LogFormatError(f"c._multi[{index}]: must be an object of feature namespaces")
        id_feature = feats.get(ID_NAMESPACE) if "ActionIds" in event else None
        if type(id_feature) is dict and len(id_feature) == 1 and id_feature.get(aid) == 1:
            if not own:
                feats = feats.copy()
            del feats[ID_NAMESPACE]
        pairs.append((aid, feats))
    orig = event.get(ORIG)
    if orig:
        context, pairs = _put_back(orig, context, pairs)
    return context, pairs


def _put_back(orig, context, pairs) -> tuple:
    """Context and actions with the originals in ``orig`` restored; checks its layout."""
    restore = orig.get("context") if type(orig) is dict else None
    actions = orig.get("actions") if type(orig) is dict else None
    if type(orig) is not dict or type(restore or {}) is not dict or type(actions or {}) is not dict:
        raise LogFormatError("orig: must be {\"context\": {...}, \"actions\": {\"<index>\": {...}}}")
    context = restored(context, restore)
    for index, change in (actions or {}).items():
        if not (index.isdigit() and int(index) < len(pairs)) or type(change) is not dict:
            raise LogFormatError(f"orig.actions.{index}: not an action index (0..{len(pairs) - 1}) "
                                 "with an object of originals")
        aid, feats = pairs[int(index)]
        pairs[int(index)] = (aid, restored(feats, change))
    return context, pairs


def dumps(event: dict) -> bytes:
    """Compact UTF-8 JSON of an event (orjson: a decision is logged on every request)."""
    return orjson.dumps(event)


def loads(data: bytes | str) -> dict:
    return orjson.loads(data)


def chosen(event: dict) -> tuple:
    """``(index, propensity)`` of the logged action (0-based index)."""
    return event["a"][0] - 1, float(event["p"][0])


def with_label(event: dict, reward: float, kind: str = "reward") -> dict:
    """A copy of the event with VW's label fields for ``reward`` first (VW attaches
    only a label it reads before ``c``): cost −reward on the chosen action."""
    index, prob = chosen(event)
    out = {"_label_cost": -float(reward), "_label_probability": prob,
           "_label_Action": index + 1, "_labelIndex": index,
           "o": [{"v": float(reward), "EventId": event["EventId"], "kind": kind}]}
    out.update((k, v) for k, v in event.items() if k not in out)
    return out


def to_feedback(event: dict, reward: float) -> Feedback:
    """The :class:`bandits.Feedback` a policy learns from this logged decision."""
    context, pairs = decode(event)
    index, prob = chosen(event)
    return Feedback(context, [{"id": aid, "features": feats} for aid, feats in pairs],
                    index, prob, float(reward))


def state(event: dict) -> dict:
    """The context a sequential policy saw at this step (with ``_session``); the
    actions are left alone."""
    context = {k: v for k, v in event["c"].items() if k != "_multi"}
    orig = event.get(ORIG)
    return restored(context, orig.get("context")) if type(orig) is dict else context
