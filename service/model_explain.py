"""``GET /v1/loops/<loop>/models/<v>/explain``: a version's largest weights, in names.

The names of hashed buckets come from the loop's recent decisions (the last
``decisions`` of its log, default :data:`DECISIONS`): what the model's columns hold in
today's traffic (:mod:`bandits.explain_model`). A multi-slot decision counts with each
slot's context (its features included).
"""
from __future__ import annotations

from bandits import BanditError, dsjson, dsjson_slots, load_policy
from bandits.explain import explains
from bandits.explain_model import bucket_names, summary
from bandits.slates import Slot, slot_context

#: Recent decisions read for the bucket names unless asked otherwise.
DECISIONS = 2000


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
    """The summary of one snapshot: ``{"policy", "summary"}`` or ``{"policy", "summary":
    None, "reason"}``."""
    try:
        policy = load_policy(blob)
    except BanditError as exc:
        return {"policy": None, "summary": None, "reason": f"the snapshot does not load: {exc}"}
    reason = explains(policy)
    if reason is not None:
        return {"policy": policy.name, "summary": None, "reason": reason}
    return {"policy": policy.name, "summary": summary(policy, bucket_names(policy, requests_of(events)), top)}
