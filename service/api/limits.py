"""Size limits on a rank body, so one hostile request cannot take a worker's CPU or memory.

The body size is checked before parsing (413); once parsed, one pass over the JSON
tree bounds the number of actions, the entries of every other object or list
(namespaces, features per namespace, items of a bag or an embedding), the length of
every string (action ids, feature names and values) and the nesting depth (422).
Messages name the configuration key of the limit and the path of the offending value,
e.g. ``context.user.bio: string of 5000 characters exceeds service.max_string_length
= 1024``.
"""
from __future__ import annotations

from ..config import Limits
from ..errors import LimitExceeded


class _Over(Exception):
    """A limit hit at a path built while the exception unwinds (no cost when none is)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message, self.path = message, []

    def at(self, key) -> "_Over":
        """Prepend ``key`` (an object key or a list index) to the path."""
        self.path.append(f"[{key}]" if type(key) is int else f".{key}")
        return self


def check_rank_body(body: dict, limits: Limits) -> None:
    """Raise :class:`LimitExceeded` naming the first limit the body exceeds."""
    try:
        actions = body.get("actions")
        if type(actions) is list and len(actions) > limits.max_actions:
            raise _Over(f"{len(actions)} actions exceed service.max_actions = "
                        f"{limits.max_actions}").at("actions")
        if not _common_ok(body, limits):
            _walk(body, 1, limits, top=True)
    except _Over as over:
        path = "".join(reversed(over.path)).lstrip(".")
        raise LimitExceeded(f"{path}: {over.message}" if path else over.message) from None


_ACTION_KEYS = frozenset({"id", "features"})


def _common_ok(body: dict, limits: Limits) -> bool:
    """True when ``body`` has the usual shape (namespaces of scalars, strings and flat
    lists) and is within every limit: the fast path of nearly every request. False only
    means "look closer" (:func:`_walk` finds the limit, if any)."""
    if limits.max_depth < 6:
        return False
    if body.get("exclude") or body.get("slots"):
        return False  # the full walk bounds them
    context, actions = body.get("context"), body.get("actions")
    if context is not None and not _namespaces_ok(context, limits):
        return False
    if actions is None:
        return True
    if type(actions) is not list:
        return False
    longest = limits.max_string_length
    for action in actions:
        if type(action) is str:
            if len(action) > longest:
                return False
            continue
        if type(action) is not dict or not action.keys() <= _ACTION_KEYS:
            return False
        aid, features = action.get("id"), action.get("features")
        if type(aid) is not str or len(aid) > longest:
            return False
        if features is not None and not _namespaces_ok(features, limits):
            return False
    return True


def _namespaces_ok(namespaces, limits: Limits) -> bool:
    """A context or an action's features: ``{namespace: {name: scalar, string or flat
    list}}`` within the limits."""
    if type(namespaces) is not dict or len(namespaces) > limits.max_features:
        return False
    longest, most = limits.max_string_length, limits.max_features
    for name, feats in namespaces.items():
        if type(feats) is not dict or len(feats) > most or len(name) > longest:
            return False
        for key, value in feats.items():
            kind = type(value)
            if len(key) > longest:
                return False
            if kind is str:
                if len(value) > longest:
                    return False
            elif kind is list:
                if len(value) > most:
                    return False
                for item in value:
                    kind = type(item)
                    if kind is dict or kind is list or (kind is str and len(item) > longest):
                        return False
            elif kind is dict:
                return False
    return True


def _walk(obj, depth: int, limits: Limits, top: bool = False) -> None:
    """Check ``obj`` (a dict or list at ``depth``) and everything under it."""
    if depth > limits.max_depth:
        raise _Over(f"nesting deeper than service.max_depth = {limits.max_depth}")
    if not top and len(obj) > limits.max_features:
        raise _Over(f"{len(obj)} {'entries' if type(obj) is dict else 'items'} exceed "
                    f"service.max_features = {limits.max_features}")
    longest = limits.max_string_length
    if type(obj) is dict:
        for key in obj:
            if len(key) > longest:
                raise _Over(f"name of {len(key)} characters exceeds service.max_string_length"
                            f" = {longest}").at(key[:32] + "...")
        items = obj.items()
    else:
        items = enumerate(obj)
    for key, value in items:
        kind = type(value)
        if kind is str:
            if len(value) > longest:
                raise _Over(f"string of {len(value)} characters exceeds "
                            f"service.max_string_length = {longest}").at(key)
        elif kind is dict or kind is list:
            try:
                _walk(value, depth + 1, limits, top and key == "actions")
            except _Over as over:
                raise over.at(key) from None
