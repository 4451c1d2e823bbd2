"""The slots of a multi-slot loop or request, validated: ``[{"id", "features"?, "actions"?}]``.

A loop names its slots in its configuration (``slots = [{id = "top", features = {pos =
{i = 1}}}, …]``); a rank body may name its own (``"slots"``), which replace the loop's
for that request. Slot ids follow the event id rules (they are part of the reward's
address); ``features`` are namespaces like the context's; ``actions`` limits a slot to
those candidate ids.

>>> [s.id for s in parse_slots([{"id": "top"}, {"id": "side", "actions": ["a"]}], "slots")]
['top', 'side']
>>> parse_slots([{"id": "top"}, {"id": "top"}], "slots")
Traceback (most recent call last):
...
bandits.errors.FeatureError: slots[1].id: 'top' is already the id of slots[0]
"""
from __future__ import annotations

import re

from bandits import FeatureError
from bandits.inputs import check_context, describe
from bandits.slates import Slot

#: Slot ids: 1-64 characters of letters, digits and ``-_.:``.
SLOT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
#: Most slots a decision may have.
MAX_SLOTS = 50
_FIELDS = ("id", "features", "actions")


def parse_slots(spec, field: str) -> tuple:
    """The :class:`~bandits.slates.Slot` list ``spec`` describes; raises
    :class:`~bandits.errors.FeatureError` naming the field at fault."""
    if not isinstance(spec, list) or not spec:
        raise FeatureError(field, f"must be a non-empty list of slot objects, got {describe(spec)}")
    if len(spec) > MAX_SLOTS:
        raise FeatureError(field, f"{len(spec)} slots; at most {MAX_SLOTS}")
    seen: dict = {}
    out = []
    for j, item in enumerate(spec):
        at = f"{field}[{j}]"
        if not isinstance(item, dict):
            raise FeatureError(at, f"must be an object with id, features, actions, got {describe(item)}")
        unknown = sorted(set(item) - set(_FIELDS))
        if unknown:
            raise FeatureError(f"{at}.{unknown[0]}", f"unknown field (allowed: {', '.join(_FIELDS)})")
        sid = item.get("id")
        if not isinstance(sid, str) or not SLOT_ID.match(sid):
            raise FeatureError(f"{at}.id", "must be 1-64 characters of letters, digits and '-_.:'")
        if sid in seen:
            raise FeatureError(f"{at}.id", f"{sid!r} is already the id of {field}[{seen[sid]}]")
        seen[sid] = j
        features = item.get("features") or {}
        try:
            features = check_context(features)
        except FeatureError as exc:
            raise FeatureError(f"{at}.features" + exc.field.partition("context")[2],
                               str(exc).partition(": ")[2]) from exc
        actions = item.get("actions")
        if actions is not None:
            if not isinstance(actions, list) or not actions or \
                    not all(isinstance(a, str) for a in actions):
                raise FeatureError(f"{at}.actions", "must be a non-empty list of action ids")
            actions = frozenset(actions)
        out.append(Slot(sid, features, actions))
    return tuple(out)


def describe_slots(slots) -> list:
    """The JSON-ready form of slots (``GET /v1/loops``)."""
    return [{"id": s.id, "features": s.features,
             **({"actions": sorted(s.actions)} if s.actions is not None else {})} for s in slots]
