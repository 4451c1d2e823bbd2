"""Typed decoding of the usual rank body: JSON to checked fields in one pass, in C.

A rank body of the usual shape (context namespaces of scalars, strings and flat lists;
actions as ids or ``{"id", "features"}`` objects; ``event_id``, ``defer``, ``k``,
``session_id``, ``explain``) is decoded by msgspec into types that carry every size
limit of ``[service]`` (lengths of strings, names, lists and objects; the number of
actions) and every type rule, so decoding it is its validation. Whatever the typed
decode refuses, and every body that has ``exclude`` or ``slots``, goes through
:func:`service.api.requests.parse_rank` on orjson's decode instead: that path words
each error, naming the field and the limit, so a typed refusal never reaches a
client. The typed path accepts only bodies the other path accepts, with equal values:
integers are held to int64 and numbers that overflow a float are refused.

>>> from service.config import Limits
>>> req = typed_rank(b'{"context": {"u": {"age": 31}}, "actions": ["a", {"id": "b"}]}', Limits())
>>> req.context, req.actions, req.pairs
({'u': {'age': 31}}, ['a', {'id': 'b', 'features': {}}], [('a', {}), ('b', {})])
>>> typed_rank(b'{"actions": ["a", "a"]}', Limits()) is None  # the worded path says why
True
"""
from __future__ import annotations

import functools
from typing import Annotated, Union

import msgspec

from bandits.explain import TOP as EXPLAIN_TOP

from ..config import Limits
from .requests import EVENT_ID, RankRequest

#: Integers the typed path takes: int64 (orjson decodes up to 2**64 - 1 and refuses more;
#: a body past int64 takes the worded path).
INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1
#: Nesting of the deepest value the typed shape holds (an item of a list feature of an
#: action); with a smaller ``service.max_depth`` every body takes the worded path.
TYPED_DEPTH = 6


@functools.lru_cache(maxsize=8)
def _decoder(max_actions: int, max_features: int, longest: int) -> msgspec.json.Decoder:
    """The decoder of a rank body under these limits."""
    text = Annotated[str, msgspec.Meta(max_length=longest)]
    whole = Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)]
    item = Union[text, whole, float, bool]
    value = Union[text, whole, float, bool, None,
                  Annotated[list[item], msgspec.Meta(max_length=max_features)]]
    namespace = Annotated[dict[text, value], msgspec.Meta(max_length=max_features)]
    features = Annotated[dict[text, namespace], msgspec.Meta(max_length=max_features)]
    context = Annotated[dict[text, Union[namespace, value]], msgspec.Meta(max_length=max_features)]

    action = msgspec.defstruct("Action", [("id", Annotated[str, msgspec.Meta(min_length=1, max_length=longest)]),
                                          ("features", Union[features, None], None)],
                               forbid_unknown_fields=True)
    body = msgspec.defstruct("RankBody", [
        ("context", Union[context, None], None),
        ("actions", Union[Annotated[list[Union[Annotated[str, msgspec.Meta(min_length=1, max_length=longest)],
                                               action]],
                                    msgspec.Meta(min_length=1, max_length=max_actions)], None], None),
        ("event_id", Union[str, None], None), ("defer", bool, False),
        ("k", Union[Annotated[int, msgspec.Meta(ge=1, le=INT_MAX)], None], None),
        ("session_id", Union[str, None], None), ("explain", Union[bool, int], False)],
        forbid_unknown_fields=True)
    return msgspec.json.Decoder(body)


def typed_rank(raw: bytes, limits: Limits) -> RankRequest | None:
    """The :class:`RankRequest` of a usual, valid body, with its actions as validated
    ``(id, features)`` pairs; None for anything else (see the module docstring)."""
    if limits.max_depth < TYPED_DEPTH or limits.max_features < 2:  # an action object has 2 keys
        return None
    try:
        body = _decoder(limits.max_actions, limits.max_features, limits.max_string_length).decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
    for text in (body.event_id, body.session_id):
        if text is not None and not EVENT_ID.match(text):
            return None
    explain = body.explain
    if explain is True:
        explain = EXPLAIN_TOP
    elif explain is False:
        explain = 0
    elif not 1 <= explain <= 1000:
        return None
    actions = pairs = None
    if body.actions is not None:
        actions, pairs = [], []
        for item in body.actions:
            if type(item) is str:
                actions.append(item)
                pairs.append((item, {}))
            else:
                feats = {} if item.features is None else item.features
                actions.append({"id": item.id, "features": feats})
                pairs.append((item.id, feats))
        if len({aid for aid, _ in pairs}) != len(pairs):
            return None
    return RankRequest({} if body.context is None else body.context, actions, body.event_id,
                       body.defer, frozenset(), body.k, body.session_id, None, explain, pairs)
