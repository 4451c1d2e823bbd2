"""The log layout of a multi-slot decision: Vowpal Wabbit's CCB DSJSON. Pure: no I/O.

One event per request; beside the single-slot layout of :mod:`bandits.dsjson` (same
``c``, ``_multi``, ``ActionIds``, ``orig`` rules), ``c._slots`` holds each slot's id and
feature namespaces (and ``_inc``, the candidates' indices a slot may show, when it
restricts them) and ``_outcomes`` each slot's decision: ``_a`` the 0-based indices of the
actions it chose among (into ``_multi``), the chosen one first, ``_p`` their
conditional probabilities. Read with its rewards (:func:`with_slot_labels`), a rewarded
slot's outcome gets VW's label first, ``_label_cost`` (−reward), and ``_o``; a slot not
rewarded yet holds its decision as ``a`` and ``p``::

    {"Timestamp": …, "Version": "1", "EventId": "e1",
     "c": {"user": {…}, "_multi": [{…, "a_id": {"item-1": 1}}, …],
           "_slots": [{"_id": "top", "pos": {"i": 1}}, {"_id": "side", "pos": {"i": 2}}]},
     "_outcomes": [{"_label_cost": -1.0, "_id": "top", "_a": [2, 0, 1], "_p": [0.9, 0.05, 0.05],
                    "_o": [{"v": 1.0, "EventId": "e1", "Index": "top", "kind": "reward"}]},
                   {"_id": "side", "a": [0, 1], "p": [0.95, 0.05]}],
     "loop": "recs", "ActionIds": […], "deferred": false, "policy": {…}}

>>> from bandits import EpsilonGreedy
>>> from bandits.slates import Slot, decide_slots
>>> pairs = [("a", {}), ("b", {"i": {"tags": ["x"]}}), ("c", {})]
>>> slots = [Slot("top", {"pos": {"i": 1}}), Slot("side", {"pos": {"i": 2}})]
>>> chosen = decide_slots(EpsilonGreedy(epsilon=0.3).decide, {"u": {"x": 1}}, pairs, slots,
...                       seed=0, event_id="e1")
>>> event = slots_event(loop="l", event_id="e1", epoch_s=0.0, context={"u": {"x": 1}},
...                     actions=pairs, slates=chosen, policy="epsilon_greedy", version=1,
...                     deferred=False)
>>> [o["_id"] for o in event["_outcomes"]], event["c"]["_slots"][1]
(['top', 'side'], {'_id': 'side', 'pos': {'i': 2}})
>>> rounds = decode_slots(loads(dumps(with_slot_labels(event, {"side": (1.0, "reward")}))))
>>> rounds.pairs == pairs, [(s.id, s.reward) for s in rounds.slots]
(True, [('top', None), ('side', 1.0)])
>>> fb = slot_feedback(rounds, 1)
>>> fb.context, len(fb.actions), fb.reward
({'u': {'x': 1}, 'pos': {'i': 2}}, 2, 1.0)
"""
from __future__ import annotations

from dataclasses import dataclass

from .dsjson import (ORIG, VERSION, _vw_actions, decode, dumps, loads, restored, timestamp,
                     to_feedback, vw_object)
from .errors import LogFormatError
from .slates import Slot, slot_context
from .types import Feedback

__all__ = ["SlotRecord", "SlatesRecord", "decode_slots", "dumps", "feedback", "is_slots", "loads",
           "slot_feedback", "slots_event", "with_slot_labels"]


def is_slots(event: dict) -> bool:
    """Whether a logged event is a multi-slot (CCB) decision."""
    return "_outcomes" in event


def slots_event(*, loop, event_id, epoch_s, context, actions, slates, policy, version,
                deferred, memo=None) -> dict:
    """The CCB DSJSON object of one multi-slot decision (``slates``: the
    :class:`~bandits.slates.SlotDecision` of each slot, in order)."""
    c, orig_context = vw_object(context)
    multi, orig_actions = _vw_actions(actions, {} if memo is None else memo)
    c = dict(c)
    c["_multi"] = multi
    c["_slots"], orig_slots, outcomes = [], {}, []
    for j, sd in enumerate(slates):
        feats, restore = vw_object(sd.slot.features)
        item = {"_id": sd.slot.id, **feats}
        if sd.slot.actions is not None:
            item["_inc"] = [i for i, (aid, _) in enumerate(actions) if aid in sd.slot.actions]
        c["_slots"].append(item)
        if restore:
            orig_slots[str(j)] = restore
        order = [sd.chosen] + [i for i in sd.decision.ranking() if i != sd.chosen]
        outcomes.append({"_id": sd.slot.id, "_a": [sd.eligible[i] for i in order],
                         "_p": [float(sd.decision.pmf[i]) for i in order]})
    event = {"Timestamp": timestamp(epoch_s), "Version": VERSION, "EventId": event_id, "c": c,
             "_outcomes": outcomes, "loop": loop, "ActionIds": [aid for aid, _ in actions],
             "deferred": bool(deferred), "policy": {"name": policy, "version": int(version)}}
    orig = {k: v for k, v in (("context", orig_context), ("actions", orig_actions),
                              ("slots", orig_slots)) if v}
    if orig:
        event[ORIG] = orig
    return event


def with_slot_labels(event: dict, rewards: dict) -> dict:
    """A copy of the event with VW's label on each slot of ``rewards`` (``{slot id:
    (reward, kind)}``), written first in its outcome as VW's parser needs. A slot not
    rewarded keeps its decision as ``a`` and ``p``, which VW ignores: it reads an
    outcome's ``_a`` and ``_p`` without ``_label_cost`` as a cost of 3.4e38."""
    out = dict(event)
    labelled = []
    for outcome in event["_outcomes"]:
        joined = rewards.get(outcome.get("_id"))
        if joined is None:  # VW would read a cost of FLT_MAX from _a/_p without a label
            labelled.append({"_id": outcome["_id"], "a": outcome["_a"], "p": outcome["_p"]})
            continue
        value, kind = joined
        item = {"_label_cost": -float(value)}
        item.update((k, v) for k, v in outcome.items() if k not in ("_label_cost", "_o"))
        item["_o"] = [{"v": float(value), "EventId": event.get("EventId"), "Index": outcome["_id"],
                       "kind": kind}]
        labelled.append(item)
    out["_outcomes"] = labelled
    return out


@dataclass(frozen=True)
class SlotRecord:
    """One slot of a logged decision: ``eligible`` the actions' indices it chose among
    (log order: the chosen first), ``pmf`` their conditional probabilities, ``reward``
    its label (None until rewarded)."""

    id: str
    features: dict
    eligible: tuple
    pmf: tuple
    reward: float | None

    @property
    def action(self) -> int:
        return self.eligible[0]

    @property
    def probability(self) -> float:
        return self.pmf[0]


@dataclass(frozen=True)
class SlatesRecord:
    """A multi-slot decision as the policy decided on it."""

    context: dict
    pairs: list
    slots: list


def decode_slots(event: dict) -> SlatesRecord:
    """Context, candidates and slots exactly as decided (VW's ``_slots`` and
    ``_outcomes`` read back); raises :class:`~bandits.errors.LogFormatError` naming the
    field that is not as written."""
    c = event.get("c")
    raw_slots = c.get("_slots") if type(c) is dict else None
    outcomes = event.get("_outcomes")
    if type(raw_slots) is not list or type(outcomes) is not list or len(raw_slots) != len(outcomes):
        raise LogFormatError("c._slots, _outcomes: must be lists with one item per slot")
    context, pairs = decode({**event, "c": {k: v for k, v in c.items() if k != "_slots"}})
    orig = event.get(ORIG) if type(event.get(ORIG)) is dict else {}
    restores = orig.get("slots") or {}
    slots = []
    for j, (item, outcome) in enumerate(zip(raw_slots, outcomes)):
        if type(item) is not dict or type(outcome) is not dict:
            raise LogFormatError(f"_outcomes[{j}]: must be an object with _id, _a, _p")
        a, p = (outcome.get("_a"), outcome.get("_p")) if "_a" in outcome else (outcome.get("a"), outcome.get("p"))
        if type(a) is not list or type(p) is not list or not a or len(a) != len(p) or \
                not all(type(i) is int and 0 <= i < len(pairs) for i in a):
            raise LogFormatError(f"_outcomes[{j}]._a/_p: must be equal-length lists of action "
                                 f"indices (0..{len(pairs) - 1}) and their probabilities")
        feats = {k: v for k, v in item.items() if not str(k).startswith("_")}
        cost = outcome.get("_label_cost")
        slots.append(SlotRecord(str(item.get("_id", j)), restored(feats, restores.get(str(j))),
                                tuple(a), tuple(float(x) for x in p),
                                None if cost is None else -float(cost)))
    return SlatesRecord(context, pairs, slots)


def slot_feedback(record: SlatesRecord, j: int, reward: float | None = None) -> Feedback:
    """The :class:`bandits.Feedback` a policy learns from slot ``j`` (its label, or
    ``reward``): the slot's context, the actions it chose among, the conditional
    propensity of its choice."""
    s = record.slots[j]
    value = s.reward if reward is None else reward
    if value is None:
        raise LogFormatError(f"_outcomes[{j}]: has no reward to learn from")
    ctx = slot_context(record.context, Slot(s.id, s.features))
    actions = [{"id": record.pairs[i][0], "features": record.pairs[i][1]} for i in s.eligible]
    return Feedback(ctx, actions, 0, s.probability, float(value))


def feedback(event: dict, reward: float, slot: str | None = None) -> Feedback:
    """The :class:`bandits.Feedback` of a joined reward: of the decision, or of the slot
    ``slot`` of a multi-slot decision."""
    if slot is None:
        return to_feedback(event, reward)
    record = decode_slots(event)
    for j, s in enumerate(record.slots):
        if s.id == slot:
            return slot_feedback(record, j, reward)
    raise LogFormatError(f"_outcomes: no slot {slot!r} in event {event.get('EventId')!r}")
