"""Log readers: DSJSON files (plain or gzip) and events from any store; Parquet logs
are :mod:`replay.parquet_log`'s, in the layout of :mod:`replay.parquet_layout`.

Every reader streams :class:`~replay.logs.LoggedRounds` chunks, so a log larger than
memory can be evaluated, and can be iterated again from the start (evaluation makes
two passes). Malformed records are counted in the reader's :class:`ReadReport` with
their location (line, row or stream entry) and never stop the run; events without a
reward are counted as unrewarded. A store (the service's Redis) hands its events to
:class:`EventLog`; replay itself opens files only.
"""
from __future__ import annotations

import contextlib
import gc
import gzip
import os
from dataclasses import asdict, dataclass, field
from typing import Iterator

import orjson

from .errors import BadEvent, EventError, LogError, SkipLearn, Unrewarded, Unsupported
from .logs import LoggedRounds, build_rounds, parse_event

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
        items = iter(self._items())
        while limit is None or self.report.rounds < limit:
            want = size if limit is None else min(size, limit - self.report.rounds)
            with _no_gc():
                rows, where = self._collect(items, want)
                rounds = self._pack(rows, where) if rows else None
            if rounds is None:
                return
            yield rounds

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
            elif isinstance(item, Unrewarded):
                report.unrewarded += 1
            elif isinstance(item, SkipLearn):
                report.skipped += 1
            elif isinstance(item, Unsupported):
                report.unsupported_kind(str(item))
            else:
                report.problem(location, str(item))
        return rows, where

    def _pack(self, rows, where) -> LoggedRounds:
        rounds, problems = build_rounds(rows, where)
        for location, message in problems:
            self.report.problem(location, message)
        self.report.rounds += len(rounds)
        return rounds

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
    """A DSJSON file, one event per line: cbserve's export or VW's own; gzip sniffed."""

    def __init__(self, path: str):
        super().__init__(path)
        if not os.path.isfile(path):
            raise LogError(f"--log: no such file {path!r}")
        self.path = path

    def _open(self):
        return open_sniffed(self.path)

    def _items(self):
        loads, number, name = orjson.loads, 0, os.path.basename(self.path)
        with self._open() as fh:
            try:
                for number, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        event = loads(line)
                    except orjson.JSONDecodeError as exc:
                        yield f"line {number}", BadEvent(f"invalid JSON: {exc}")
                        continue
                    yield f"line {number}", _parsed(event, f"{name}:{number}")
            except (OSError, EOFError) as exc:  # truncated or corrupt gzip
                yield f"line {number + 1}", BadEvent(f"unreadable from here on: {exc}")


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
