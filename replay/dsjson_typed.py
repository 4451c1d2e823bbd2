"""Typed decoding of a DSJSON line: the fields the estimators need, checked in C, and
the context and actions left in the line until something reads them.

A line is decoded into :class:`Event`, a msgspec Struct that holds ``EventId``,
``Timestamp``, the label fields and ``_skipLearn``, type-checked in C, and keeps ``a``,
``p``, ``ActionIds`` and ``c._multi`` as text, decoded and checked (integers; numbers;
strings; objects, counted) once per distinct text, since a loop's actions and its
logger's orders and pmfs repeat from line to line. Everything else (the context's
namespaces, the actions' features, ``o``, ``policy`` ...) is skipped without building a
Python object for it: most of a line is context, so this is several times faster than
decoding the line.

:func:`typed_row` accepts only the common, well-formed case and the events counted
apart (unrewarded, ``_skipLearn``); it returns None for anything else (a type msgspec
refuses, a multi-slot event, a value out of range, an ``orig`` it cannot check), and
the reader then parses that line the general way (:func:`replay.logs.parse_event`),
so each refusal keeps its message and each count its kind. The context and actions of
a round are :func:`~replay.logs.parse_event`'s own, parsed from the line the first time
they are read (:class:`LineRounds`).

What msgspec skips it checks as JSON, not as orjson does in every respect: bytes that
are not UTF-8 are caught here (the line goes to the general path, which counts it
malformed), but a number beyond a double's range (``1e400``, which no JSON writer
emits) inside the context or the actions is not: the line is read as a round whose
context holds ``inf``, where parsing it whole counts it malformed.

>>> line = (b'{"_label_cost": -1.0, "_label_probability": 0.8, "_labelIndex": 1,'
...         b' "EventId": "e1", "a": [2, 1], "p": [0.8, 0.2],'
...         b' "c": {"u": {"x": 1}, "_multi": [{"i": {"n": "a"}}, {"i": {"n": "b"}}]}}')
>>> event_id, timestamp, source, k, chosen, propensity, reward, a, p = typed_row(line, "log:1")
>>> event_id, k, chosen, propensity, reward, a, p
('e1', 2, 1, 0.8, 1.0, [2, 1], [0.8, 0.2])
>>> store = LineRounds([source], [event_id])
>>> store.context(0), [action["id"] for action in store.actions(0)]
({'u': {'x': 1}}, ['1', '2'])
>>> typed_row(line.replace(b'"a": [2, 1]', b'"a": "2"'), "log:1") is None  # the general path says why
True
"""
from __future__ import annotations

import json
import sys
import math
from typing import Optional, Union

import msgspec
import orjson
from msgspec import UNSET, Raw, Struct, UnsetType, field

from .errors import SkipLearn, Unrewarded
from .logs import parse_event

_NUMBER = Union[int, float]


class Item(Struct, gc=False):
    """An action's feature object in ``c._multi``: checked to be an object, not read."""


class Context(Struct, gc=False):
    """``c``: its ``_multi`` kept as text (counted once per distinct text), ``_slots``
    (a multi-slot event) noticed."""

    multi: Raw = field(name="_multi")
    slots: Raw = field(name="_slots", default=None)


class Event(Struct, gc=False):
    """The fields of a decision the estimators read; every other key is skipped.

    A field absent from the line is ``UNSET`` where :func:`~replay.logs.parse_event`
    tells absent from ``null`` apart, else None.
    """

    EventId: Union[str, UnsetType] = UNSET
    Timestamp: Optional[str] = None
    c: Optional[Context] = None
    a: Raw = None
    p: Raw = None
    ActionIds: Raw = None
    orig: Raw = None
    cost: Union[_NUMBER, UnsetType] = field(name="_label_cost", default=UNSET)
    probability: Union[_NUMBER, UnsetType] = field(name="_label_probability", default=UNSET)
    index: Union[int, UnsetType] = field(name="_labelIndex", default=UNSET)
    skip: Optional[bool] = field(name="_skipLearn", default=None)
    outcomes: Raw = field(name="_outcomes", default=None)


_decode = msgspec.json.Decoder(Event).decode
_decode_items = msgspec.json.Decoder(list[Item]).decode
_decode_ids = msgspec.json.Decoder(list[str]).decode
_decode_ints = msgspec.json.Decoder(list[int]).decode
_decode_numbers = msgspec.json.Decoder(list[_NUMBER]).decode
#: Distinct ``a`` and ``p`` lists remembered (each): a logger repeats a few orders and
#: pmfs (ε-greedy's, a uniform one), each decoded once.
LISTS_KEPT = 1_024


def row_reader(name: str):
    """``row(line, number)``: :func:`typed_row` for line ``number`` of file ``name``.

    It remembers the last ``c._multi`` and ``ActionIds`` it counted and the distinct
    ``a`` and ``p`` lists it decoded: a loop's actions and its logger's pmfs repeat from
    line to line, so each is decoded once (for a run of equal texts, or up to
    :data:`LISTS_KEPT` of each).
    """
    multi_seen = ids_seen = Raw(b"")
    k = ids = -1
    indices: dict = {}  # text of a -> its list (None: not a list of ints)
    pmfs: dict = {}  # text of p -> its list (None: not a list of numbers)

    def row(line: bytes, number: int):
        nonlocal multi_seen, k, ids_seen, ids
        try:
            event = _decode(line)
        except (msgspec.DecodeError, RecursionError):
            return None
        c, a_text, p_text, ids_text = event.c, event.a, event.p, event.ActionIds
        if c is None or a_text is None or p_text is None or c.slots is not None or \
                event.outcomes is not None or not (line.isascii() or _utf8(line)):
            return None  # for the general path (orjson refuses bad UTF-8; msgspec skips it)
        if c.multi != multi_seen:
            multi_seen, k = c.multi, _count(_decode_items, c.multi) or -1
        if ids_text is not None and ids_text != ids_seen:
            ids_seen, ids = ids_text, _count(_decode_ids, ids_text)
        event_id = f"{name}:{number}" if event.EventId is UNSET else event.EventId
        if not event_id:
            return None
        if event.skip:
            return SkipLearn(event_id)
        a, p = indices.get(bytes(a_text), UNSET), pmfs.get(bytes(p_text), UNSET)
        if a is UNSET:
            a = _memo(indices, a_text, _decode_ints)
        if p is UNSET:
            p = _memo(pmfs, p_text, _decode_numbers)
        if k < 1 or a is None or p is None or not a or len(a) != len(p) or \
                (ids_text is not None and ids not in (None, k)) or \
                (event.orig is not None and not _orig_fits(event.orig, k)):
            return None
        cost = event.cost
        if cost is UNSET:
            return Unrewarded(event_id)
        chosen = a[0] - 1 if event.index is UNSET else event.index
        prob = p[0] if event.probability is UNSET else event.probability
        if not (0 <= chosen < k and 0.0 < prob <= 1.0 and
                (cost - cost == 0.0 if type(cost) is float else _finite(cost))):
            return None
        return event_id, event.Timestamp, line, k, chosen, float(prob), -float(cost), a, p
    return row


def typed_row(line: bytes, where: str):
    """``(event_id, timestamp, line, K, chosen, propensity, reward, a, p)`` of a
    well-formed rewarded decision, :class:`~replay.errors.Unrewarded` or
    :class:`~replay.errors.SkipLearn` for one counted apart, or None: the line is for
    the general path. ``where`` (e.g. ``"log.json:12"``) stands in for a missing
    ``EventId``, as in :func:`~replay.logs.parse_event`. (A reader calls
    :func:`row_reader`'s function instead, which remembers across lines.)"""
    name, _, number = where.rpartition(":")
    return row_reader(name)(line, number)


def _count(decode, raw: Raw) -> int | None:
    """How many items ``raw`` lists (``decode`` checks their type); None for ``null``,
    -1 when it is not such a list."""
    if raw == _NULL:
        return None
    try:
        return len(decode(raw))
    except msgspec.DecodeError:
        return -1


def _memo(memo: dict, raw: Raw, decode):
    """``decode(raw)`` (None when it fails), kept in ``memo`` by its text: equal texts
    share one list."""
    if len(memo) >= LISTS_KEPT:
        memo.clear()
    try:
        value = decode(raw)
    except msgspec.DecodeError:
        value = None
    memo[bytes(raw)] = value
    return value


_NULL = Raw(b"null")


def _orig_fits(raw: Raw, k: int) -> bool:
    """Whether ``orig`` has the layout :func:`bandits.dsjson.decode` accepts for K
    actions (else the general path names the fault)."""
    try:
        orig = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError:
        return False
    if not orig:
        return True
    if type(orig) is not dict:
        return False
    context, actions = orig.get("context"), orig.get("actions")
    if type(context or {}) is not dict or type(actions or {}) is not dict:
        return False
    return all(i.isascii() and i.isdigit() and int(i) < k and type(change) is dict
               for i, change in (actions or {}).items())


def _utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _finite(x) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _loads_deep(source: bytes):
    """``json.loads`` with room for any nesting the typed decoding accepted (msgspec
    refuses past 1,000 levels; Python's parser would stop short of that)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 2_000)
    try:
        return json.loads(source)
    finally:
        sys.setrecursionlimit(limit)


class LineRounds:
    """The contexts and actions of a chunk's rounds, each round's parsed from its line
    by :func:`~replay.logs.parse_event` the first time either is read, then kept.

    ``sources[i]`` is round i's line, or its ``(context, actions)`` when already parsed;
    ``event_ids[i]`` its event id. :class:`~replay.logs.Lazy` hands them out by index.
    """

    def __init__(self, sources: list, event_ids: list):
        self._sources, self._ids = sources, event_ids

    def _parsed(self, i: int) -> tuple:
        source = self._sources[i]
        if type(source) is bytes:
            try:
                event = orjson.loads(source)
            except orjson.JSONDecodeError:  # a number beyond a double's range, which orjson
                event = _loads_deep(source)  # refuses and the typed decoding skipped: inf
            _, _, context, actions, *_ = parse_event(event, self._ids[i])
            source = self._sources[i] = (context, actions)
        return source

    def context(self, i: int) -> dict:
        return self._parsed(i)[0]

    def actions(self, i: int) -> list:
        return self._parsed(i)[1]
