"""Log readers: DSJSON files (plain or gzip) and events from any store; Parquet logs
are :mod:`replay.parquet_log`'s, in the layout of :mod:`replay.parquet_layout`.

Every reader streams :class:`~replay.logs.LoggedRounds` chunks, so a log larger than
memory can be evaluated, and can be iterated again from the start (evaluation makes
two passes). Malformed records are counted in the reader's :class:`ReadReport` with
their location (line, row or stream entry) and never stop the run; events without a
reward are counted as unrewarded. A store (the service's Redis) hands its events to
:class:`EventLog`; replay itself opens files only. :class:`DSJSONLog` decodes only the
fields the estimators read (:mod:`replay.dsjson_typed`) and a round's context when it
is read.
"""
from __future__ import annotations

import contextlib
import gc
import gzip
import os
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np
import orjson

from .dsjson_typed import LineRounds, row_reader
from .errors import BadEvent, EventError, LogError, SkipLearn, Unrewarded, Unsupported
from .logs import Lazy, LoggedRounds, build_rounds, pack_rounds, parse_event

#: Rounds per chunk unless the caller says otherwise.
CHUNK_ROUNDS = 1_000
#: Problems kept with their location in a report (all are counted).
MAX_PROBLEMS = 100
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass
class ReadReport:
    """What one pass over a log saw."""

    source: str
    records: int = 0
    rounds: int = 0
    unrewarded: int = 0
    skipped: int = 0
    unsupported: int = 0
    malformed: int = 0
    problems: list = field(default_factory=list)
    reasons: dict = field(default_factory=dict)

    def problem(self, where: str, message: str) -> None:
        self.malformed += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((where, message))

    def unsupported_kind(self, reason: str) -> None:
        self.unsupported += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def summary(self) -> str:
        text = (f"{self.source}: {self.records} records, {self.rounds} rewarded rounds, "
                f"{self.unrewarded} unrewarded, {self.skipped} skipped (_skipLearn), "
                f"{self.unsupported} unsupported, {self.malformed} malformed")
        text += "".join(f"\n  {n} unsupported: {why}" for why, n in self.reasons.items())
        shown = "".join(f"\n  {where}: {msg}" for where, msg in self.problems[:10])
        more = self.malformed - min(10, len(self.problems))
        return text + shown + (f"\n  ... and {more} more" if more > 0 else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "problems": [list(p) for p in self.problems]}


class LogSource:
    """Base of the readers: subclasses yield ``(where, parsed tuple or exception)``.

    ``model_loader(version) -> bytes | None`` reads a published model of the logging
    service (for candidates naming a ``model_version``); None when the log has none.
    """

    model_loader = None
    #: Rounds per chunk an evaluation asks for unless told otherwise.
    chunk_rounds = CHUNK_ROUNDS

    def __init__(self, name: str):
        self.name = name
        self.report = ReadReport(name)

    def chunks(self, size: int = CHUNK_ROUNDS, limit: int | None = None) -> Iterator[LoggedRounds]:
        """Rewarded rounds in log order, ``size`` per chunk (at most ``limit`` in all);
        the report restarts with each pass."""
        self.report = ReadReport(self.name)
        with self._reading() as read:
            while limit is None or self.report.rounds < limit:
                want = size if limit is None else min(size, limit - self.report.rounds)
                with _no_gc():
                    rows, where = read(want)
                    rounds = self._pack(rows, where) if rows else None
                if rounds is None:
                    return
                yield rounds

    @contextlib.contextmanager
    def _reading(self):
        """``read(want) -> (rows, where)`` for one pass: up to ``want`` parsed rows and
        their locations, counting what it skips."""
        items = iter(self._items())
        yield lambda want: self._collect(items, want)

    def _collect(self, items, want) -> tuple:
        """Up to ``want`` parsed rows from ``items``; counts what it skips."""
        report, rows, where = self.report, [], []
        for location, item in items:
            report.records += 1
            if type(item) is tuple:
                rows.append(item)
                where.append(location)
                if len(rows) >= want:
                    break
            else:
                self._count(location, item)
        return rows, where

    def _count(self, location: str, item: Exception) -> None:
        """Count an event that is not a round, by kind."""
        if isinstance(item, Unrewarded):
            self.report.unrewarded += 1
        elif isinstance(item, SkipLearn):
            self.report.skipped += 1
        elif isinstance(item, Unsupported):
            self.report.unsupported_kind(str(item))
        else:
            self.report.problem(location, str(item))

    def _pack(self, rows, where) -> LoggedRounds:
        rounds, problems = self._build(rows, where)
        for location, message in problems:
            self.report.problem(location, message)
        self.report.rounds += len(rounds)
        return rounds

    def _build(self, rows, where) -> tuple:
        """``(rounds, problems)`` of a chunk's rows (:func:`~replay.logs.build_rounds`)."""
        return build_rounds(rows, where)

    def _items(self):
        raise NotImplementedError


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic GC while parsing: parsed events hold no cycles, and collections
    triggered by millions of fresh dicts cost more than the parsing itself."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parsed(event, where: str | None = None, own: bool = True):
    try:
        return parse_event(event, where, own)
    except EventError as exc:
        return exc


class DSJSONLog(LogSource):
    """A DSJSON file, one event per line: cbserve's export or VW's own; gzip sniffed.

    Each line is decoded by :func:`~replay.dsjson_typed.typed_row`, which reads only
    the fields the estimators need; a round's context and actions are parsed from its
    line when something reads them (``contexts`` and ``actions`` are
    :class:`~replay.logs.Lazy`). A line it leaves to the general path is parsed whole
    (:func:`~replay.logs.parse_event`), so every refusal names its field.
    """

    def __init__(self, path: str):
        super().__init__(path)
        if not os.path.isfile(path):
            raise LogError(f"--log: no such file {path!r}")
        self.path = path

    def _open(self):
        return open_sniffed(self.path)

    @contextlib.contextmanager
    def _reading(self):
        with self._open() as fh:
            lines = _Lines(fh, os.path.basename(self.path))
            yield lambda want: self._read(lines, want)

    def _read(self, lines, want) -> tuple:
        """Up to ``want`` rows ``(event_id, timestamp, source, K, chosen, propensity,
        reward, a, p)`` and their line numbers; counts what it skips. ``source`` is the
        line, or ``(context, actions)`` when the general path parsed it."""
        report, rows, numbers = self.report, [], []
        name, number, typed = os.path.basename(self.path), lines.number, lines.typed
        try:
            for number, line in lines.numbered:
                item = typed(line, number)
                if item is None:
                    item = _general(line, f"{name}:{number}")
                    if item is None:
                        continue
                if type(item) is tuple:
                    rows.append(item)
                    numbers.append(number)
                    if len(rows) >= want:
                        break
                else:
                    report.records += 1
                    self._count(f"line {number}", item)
        except (OSError, EOFError) as exc:  # truncated or corrupt gzip
            report.records += 1
            report.problem(f"line {number + 1}", f"unreadable from here on: {exc}")
            lines.numbered = iter(())
        report.records += len(rows)
        lines.number = number
        return rows, numbers

    def _build(self, rows, numbers) -> tuple:
        ids, stamps, sources, ks, chosen, props, rewards, a, p = (list(c) for c in zip(*rows))
        store, index = LineRounds(sources, ids), np.arange(len(rows))
        columns = [ids, stamps, Lazy(store.context, index), Lazy(store.actions, index),
                   chosen, props, rewards, a, p]
        typed = not any(type(source) is tuple for source in sources)  # no line parsed whole
        return pack_rounds(columns, ks, Lazy(_line_name, np.asarray(numbers)), typed)


class _Lines:
    """A file's lines, numbered from 1, read across the chunks of one pass."""

    def __init__(self, fh, name: str):
        self.numbered, self.number = enumerate(fh, 1), 0
        self.typed = row_reader(name)  # the typed decoding, with what it remembers


def _line_name(number: int) -> str:
    return f"line {number}"


def _general(line: bytes, where: str):
    """A line the way :func:`~replay.logs.parse_event` reads it, as a row of
    :meth:`DSJSONLog._read` or the exception that says why it is none; None for a
    blank line."""
    if not line.strip():
        return None
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return BadEvent(f"invalid JSON: {exc}")
    item = _parsed(event, where)
    if type(item) is not tuple:
        return item
    event_id, timestamp, context, actions, chosen, prob, reward, a, p = item
    return event_id, timestamp, (context, actions), len(actions), chosen, prob, reward, a, p


class EventLog(LogSource):
    """DSJSON events from any store: ``events()`` yields ``(where, event)`` pairs, each
    event a dict, labelled when rewarded (:func:`bandits.dsjson.with_label`), or the
    exception that says why the entry is none; it is called again for every pass.
    ``model_loader(version) -> bytes | None`` reads the store's published models.

    The service reads a loop's Redis log through it (:class:`service.export.RedisLog`),
    so replay stays free of Redis keys and clients.

    >>> events = [("entry 1", {"EventId": "e1", "a": [1, 2], "p": [0.9, 0.1],
    ...            "c": {"_multi": [{}, {}]}, "_label_cost": -1.0,
    ...            "_label_probability": 0.9, "_labelIndex": 0}),
    ...           ("entry 2", {"EventId": "e2", "a": [1], "p": [1.0], "c": {"_multi": [{}]}})]
    >>> source = EventLog("memory", lambda: iter(events))
    >>> [len(chunk) for chunk in source.chunks()], source.report.unrewarded
    ([1], 1)
    >>> [len(chunk) for chunk in source.chunks()]  # every pass reads the same events
    [1]
    """

    def __init__(self, name: str, events, model_loader=None):
        super().__init__(name)
        self._events, self.model_loader = events, model_loader

    def _items(self):
        for where, event in self._events():
            yield where, event if isinstance(event, Exception) else _parsed(event, own=False)


def open_sniffed(path: str):
    """A binary file object, gunzipped when the file starts with gzip's magic bytes."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")
