"""``GET /v1/loops/<loop>/models/<v>/explain``: a version's largest weights, in names.

The names of hashed buckets come from the loop's recent decisions (the last
``decisions`` of its log, default :data:`DECISIONS`; those the version's featurizer
refuses, logged under another featurizer, are skipped and counted): what the model's columns hold in
today's traffic (:mod:`bandits.explain_model`). A multi-slot decision counts with each
slot's context (its features included). The latest single decision of the log is also
decided again by the version and explained, best action first: an example for review.
"""
from __future__ import annotations

from bandits import BanditError, dsjson, dsjson_slots, load_policy
from bandits.explain import explains
from bandits.explain_model import bucket_names, summary
from bandits.slates import Slot, slot_context

from .explanations import explanation

#: Recent decisions read for the bucket names unless asked otherwise.
DECISIONS = 500
#: Contributions listed per action in the recent decision's explanation.
RECENT_TOP = 5


def requests_of(events):
    """``(context, [(id, features)])`` of logged decisions (each slot's for a multi-slot one)."""
    for event in events:
        try:
            if dsjson_slots.is_slots(event):
                record = dsjson_slots.decode_slots(event)
                for s in record.slots:
                    yield slot_context(record.context, Slot(s.id, s.features)), record.pairs
            else:
                yield dsjson.decode(event)
        except BanditError:
            continue  # an entry this layout does not hold: it names nothing


def model_summary(blob: bytes, events, top: int) -> dict:
    """The summary of one snapshot: ``{"policy", "summary", "recent"}``, ``summary``
    None (with the ``reason``) for a policy with no weights to list; ``recent`` the
    explanation of the latest single decision in ``events`` as this version decides it
    now (:func:`service.explanations.explanation`), or None."""
    try:
        policy = load_policy(blob)
    except BanditError as exc:
        return {"policy": None, "summary": None, "recent": None,
                "reason": f"the snapshot does not load: {exc}"}
    events = list(events)
    out = {"policy": policy.name, "recent": _recent(policy, events)}
    reason = explains(policy)
    if reason is not None:
        return {**out, "summary": None, "reason": reason}
    names = bucket_names(policy, requests_of(events))
    return {**out, "summary": summary(policy, names, top), "decisions_refused": names["refused"]}


def _recent(policy, events) -> dict | None:
    """The latest single decision of ``events`` decided and explained again."""
    for event in reversed(events):
        if dsjson_slots.is_slots(event) or "session_id" in event:
            continue
        try:
            context, pairs = dsjson.decode(event)
            actions = [{"id": aid, "features": feats} for aid, feats in pairs]
            decision = policy.decide(context, actions)
            why = explanation(policy, context, actions, decision, RECENT_TOP)
        except BanditError:
            return None  # logged under other actions or features than this version takes
        if why.get("actions"):
            order = decision.ranking()
            why["actions"] = [why["actions"][i] for i in order]
        return {"event_id": event.get("EventId"), "logged_policy": event.get("policy"), **why}
    return None
