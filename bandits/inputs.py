"""Validation of the request objects every policy receives: contexts and action lists.

A context maps namespaces to feature objects; an action is ``{"id": str,
"features": {namespace: {...}}}`` or a bare id string. Both the hashing
featurizer and the Vowpal Wabbit text writer walk features through
:func:`iter_namespaces` and :func:`classify`, so they accept exactly the same input.
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

import numpy as np

from .errors import FeatureError

#: Namespace under which top-level (namespace-less) context features are grouped.
DEFAULT_NAMESPACE = ""

NUMBER, STRING, STRINGS, NUMBERS, SKIP = "number", "string", "strings", "numbers", "skip"

#: Largest magnitude of a numeric feature or a reward. Far beyond any real feature
#: (millisecond timestamps are 1.7e12), and small enough that a linear model's
#: statistics (Σxxᵀ, Σrx over a trillion events) stay finite: one request with 1e299
#: would otherwise turn a shared model's state to NaN for every later decision.
MAX_ABS_VALUE = 1e15

#: The keys an action object may have.
ACTION_KEYS = ("id", "features")


def normalize_actions(actions: Any, field: str = "actions") -> list:
    """Return ``[(id, features), ...]``; refuse empty lists, bad or duplicate ids."""
    out = []
    if type(actions) is list and actions:  # fast path: well-formed JSON-decoded actions
        append = out.append
        for action in actions:
            if type(action) is dict and len(action) == 2:
                aid, feats = action.get("id"), action.get("features")
                if type(aid) is str and aid and type(feats) is dict:
                    append((aid, feats))
                    continue
            break
        else:
            if len({aid for aid, _ in out}) == len(out):
                return out
    return _normalize_actions(actions, field)


def _normalize_actions(actions: Any, field: str) -> list:
    """The validating path of :func:`normalize_actions`, with messages naming the field."""
    if not isinstance(actions, (list, tuple)) or not actions:
        raise FeatureError(field, "must be a non-empty list of actions")
    out = []
    for i, action in enumerate(actions):
        if isinstance(action, str):
            aid, feats = action, None
        elif isinstance(action, Mapping):
            _no_unknown_keys(action, f"{field}[{i}]")
            aid, feats = action.get("id"), action.get("features")
        else:
            raise FeatureError(f"{field}[{i}]", "must be an object with an 'id' or an id string")
        if type(aid) is not str or not aid:
            raise FeatureError(f"{field}[{i}].id", "must be a non-empty string")
        if type(feats) is not dict:
            feats = as_dict(feats, f"{field}[{i}].features")
        out.append((aid, feats))
    if len({aid for aid, _ in out}) != len(out):
        seen = set()
        for i, (aid, _) in enumerate(out):
            if aid in seen:
                raise FeatureError(f"{field}[{i}].id", f"duplicate action id {aid!r}")
            seen.add(aid)
    return out


def _no_unknown_keys(action: Mapping, field: str) -> None:
    """Refuse a key of an action object other than ``id`` and ``features`` (a typo such
    as ``feature`` would otherwise drop the action's features unnoticed)."""
    for key in action:
        if key not in ACTION_KEYS:
            raise FeatureError(f"{field}.{key}", "unknown key (allowed: id, features)")


def as_dict(obj: Any, field: str) -> dict:
    """A feature object as a plain dict (``None`` is empty); anything else is refused."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    raise FeatureError(field, "must be an object of namespaces")


def check_context(context: Any, field: str = "context") -> Mapping:
    """Return the context as a mapping (``None`` means empty: context-free use)."""
    return context if type(context) is dict else as_dict(context, field)


def iter_namespaces(obj: Mapping, field: str) -> Iterator[tuple]:
    """Yield ``(namespace, {name: value})``; metadata keys (``_x``) are skipped.

    Top-level values that are not objects are features of :data:`DEFAULT_NAMESPACE`.
    """
    loose = {}
    for ns, feats in obj.items():
        if type(ns) is not str:
            raise FeatureError(field, f"namespace names must be strings, got {ns!r}")
        if ns.startswith("_"):
            continue
        if type(feats) is dict:
            yield ns, feats
        elif isinstance(feats, Mapping):
            yield ns, dict(feats)
        else:
            loose[ns] = feats
    if loose:
        yield DEFAULT_NAMESPACE, loose


def classify(value: Any, field: str) -> str:
    """Name the kind of a feature value, or raise naming the field.

    Numbers (bools count as 0/1) are numeric features, strings categorical, lists of
    strings bags, lists of numbers dense blocks (embeddings); ``None`` is skipped.
    """
    if value is None:
        return SKIP
    if isinstance(value, (int, float)):
        if not bounded(value):
            raise FeatureError(field, number_message(value))
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return STRINGS
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            if not all(bounded(v) for v in value):
                raise FeatureError(field, "embedding holds NaN, Infinity or a number of "
                                          f"magnitude above {MAX_ABS_VALUE:g}")
            return NUMBERS
        raise FeatureError(field, "a list must hold only strings or only numbers")
    raise FeatureError(field, "must be a number, a string, a list of strings or of numbers, "
                              f"or null, got {describe(value)}")


def bounded(value) -> bool:
    """True for a number within ±:data:`MAX_ABS_VALUE` (NaN, infinities and huge ints are not)."""
    try:
        return math.isfinite(value) and abs(value) <= MAX_ABS_VALUE
    except OverflowError:
        return False


def check_value(value, field: str) -> float:
    """``value`` as a float if it is a number within ±:data:`MAX_ABS_VALUE` (not a
    bool), else :class:`FeatureError` naming ``field``; for rewards."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not bounded(value):
        raise FeatureError(field, number_message(value))
    return float(value)


def number_message(value) -> str:
    """The error message for a number outside ±:data:`MAX_ABS_VALUE` (or not a number)."""
    return f"must be a finite number of magnitude at most {MAX_ABS_VALUE:g}, got {describe(value)}"


def describe(value) -> str:
    """``value`` named in JSON's (and TOML's) terms for an error message: ``"1"`` is
    the string '1', ``True`` the boolean true, ``None`` null, a dict an object."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (int, float, np.number)):
        return str(value)[:40]
    return f"a {type(value).__name__} object"


def feature_field(side: str, ns: str, name: str) -> str:
    """Dotted path naming a feature in error messages, e.g. ``context.user.age``."""
    return f"{side}.{ns}.{name}" if ns else f"{side}.{name}"
