"""Parsing and validation of request bodies: every problem is a 4xx naming the field.

JSON is parsed strictly by orjson: ``NaN``, ``Infinity``, numbers that overflow a
float and invalid UTF-8 are refused (Python's ``json`` would accept the first three),
and so are unknown fields.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from bandits import FeatureError
from bandits.inputs import check_value, describe

from bandits.explain import TOP as EXPLAIN_TOP

from ..config import Limits
from ..slots import SLOT_ID, parse_slots
from ..errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from .limits import check_rank_body

#: Event ids: 1-128 characters of letters, digits and ``-_.:``.
EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
_RANK_FIELDS = ("context", "actions", "event_id", "defer", "exclude", "k", "session_id", "slots",
                "explain")
_REWARD_FIELDS = ("value", "end", "slot", "values")


def parse_body(raw: bytes, content_type: str | None, limit: int) -> dict:
    """The JSON object of a request body; 415, 413 or 400 when it is not one."""
    mimetype = (content_type or "").split(";")[0].strip().lower()
    if mimetype != "application/json":
        got = repr(content_type) if content_type else "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {got}")
    if len(raw) > limit:
        raise PayloadTooLarge(f"body of {len(raw)} bytes exceeds service.max_body_bytes = {limit}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        near = raw[exc.pos:exc.pos + 24].decode("utf-8", "replace")
        raise BadRequest(f"body is not valid JSON: {exc.msg} at char {exc.pos} (near {near!r})") from exc
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object, got {describe(body)}")
    return body


def check_event_id(value, field: str = "event_id") -> str:
    if not isinstance(value, str) or not EVENT_ID.match(value):
        raise BadRequest(f"{field}: must be 1-128 characters of letters, digits and '-_.:'")
    return value


@dataclass
class RankRequest:
    """A validated rank body (context and actions are checked by the policy)."""

    context: dict
    actions: list | None
    event_id: str | None
    defer: bool
    exclude: frozenset
    k: int | None
    session_id: str | None = None
    slots: tuple | None = None  # the request's own slots (service.slots), None: the loop's
    explain: int = 0            # contributions listed per action in an explanation (0: none)
    pairs: list | None = None   # the actions as validated (id, features) pairs, when decoded so


def parse_rank(body: dict, limits: Limits) -> RankRequest:
    """Validate the rank body's fields and sizes; unknown fields are refused."""
    unknown = sorted(set(body) - set(_RANK_FIELDS))
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(_RANK_FIELDS)})")
    context = body.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise BadRequest("context: must be an object of namespaces")
    actions = body.get("actions")
    if actions is not None:
        if not isinstance(actions, list) or not actions:
            raise BadRequest("actions: must be a non-empty list of actions")
    event_id = body.get("event_id")
    if event_id is not None:
        check_event_id(event_id)
    defer = body.get("defer", False)
    if not isinstance(defer, bool):
        raise BadRequest("defer: must be true or false")
    exclude = body.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise BadRequest("exclude: must be a list of action ids")
    k = body.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise BadRequest("k: must be an integer >= 1")
    session_id = body.get("session_id")
    if session_id is not None:
        check_event_id(session_id, "session_id")
    check_rank_body(body, limits)
    slots = body.get("slots")
    if slots is not None:
        try:
            slots = parse_slots(slots, "slots")
        except FeatureError as exc:
            raise BadRequest(str(exc)) from exc
    explain = body.get("explain", False)
    if explain is True:
        explain = EXPLAIN_TOP
    elif explain is False:
        explain = 0
    elif isinstance(explain, bool) or not isinstance(explain, int) or not 1 <= explain <= 1000:
        raise BadRequest("explain: must be true, false or the number of contributions to list (1-1000)")
    return RankRequest(context, actions, event_id, defer, frozenset(exclude), k, session_id, slots,
                       explain)


def explain_query(value: str | None) -> int:
    """The ``?explain=`` query parameter: ``1``/``true`` asks for an explanation."""
    if value is None or value in ("0", "false"):
        return 0
    if value in ("1", "true"):
        return EXPLAIN_TOP
    raise BadRequest(f"explain: the query parameter takes 1, true, 0 or false, got {value!r}")


def parse_reward(body: dict) -> tuple:
    """``(value, end, slot values)`` of a reward body: ``end`` closes the step's session;
    slot values (``{slot id: value}``, from ``{"slot", "value"}`` or ``{"values"}``) are
    None for a single decision's reward."""
    unknown = sorted(set(body) - set(_REWARD_FIELDS))
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(_REWARD_FIELDS)})")
    end = body.get("end", False)
    if not isinstance(end, bool):
        raise BadRequest("end: must be true or false")
    if "values" in body:
        if "value" in body or "slot" in body:
            raise BadRequest("values: send either values, or slot and value")
        values = body["values"]
        if not isinstance(values, dict) or not values:
            raise BadRequest("values: must be a non-empty object of slot id: reward")
        return None, end, {_slot_id(sid, f"values.{sid}"): _value(v, f"values.{sid}")
                           for sid, v in values.items()}
    if "value" not in body:
        raise BadRequest("value: required")
    value = _value(body["value"], "value")
    if "slot" in body:
        return value, end, {_slot_id(body["slot"], "slot"): value}
    return value, end, None


def _value(value, field: str) -> float:
    try:
        return check_value(value, field)
    except FeatureError as exc:
        raise BadRequest(str(exc)) from exc


def _slot_id(value, field: str) -> str:
    if not isinstance(value, str) or not SLOT_ID.match(value):
        raise BadRequest(f"{field}: a slot id is 1-64 characters of letters, digits and '-_.:'")
    return value


def parse_end(body: dict) -> None:
    """An end-of-session body: empty, or an empty object."""
    if body:
        raise BadRequest(f"{sorted(body)[0]}: unknown field (the end call takes no fields)")
