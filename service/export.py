"""A loop's log out of Redis: ``cbserve export`` files, and the source replay reads.

``cbserve export`` writes DSJSON lines (``.gz``: gzip), Parquet (``.parquet``, the
layout :class:`replay.readers.ParquetLog` reads) or the transitions of a sequential
loop's episodes (``--transitions``). The output file is opened before the log is read,
so a path that cannot be written fails at once with a message naming ``-o/--output``.

Offline evaluation reads a live loop through :func:`open_log` (a Redis URL, or any
file replay reads), which hands replay an :class:`replay.readers.EventLog`: replay
never touches Redis. Both paths meet the joined rewards in :func:`labelled_log` only.
"""
from __future__ import annotations

import contextlib
import gzip
import os

import orjson

from bandits import dsjson, dsjson_slots
from replay.errors import BadEvent, EventError, LogError, Unsupported
from replay.readers import REDIS_SCHEMES, EventLog, LogSource
from replay.sources import open_log as open_file

from . import transitions
from .errors import CommandError, StoreError
from .store import LoopLog, LoopStore, connect
from .store.client import CLUSTER_SCHEMES


def labelled_log(log: LoopLog, start: str = "-"):
    """Yield ``(entry id, event, joined)`` for every decision from ``start`` on, the event
    labelled (:func:`bandits.dsjson.with_label`) with its reward when ``joined =
    (reward, kind)`` is not None; a multi-slot event's ``joined`` is ``{slot id: (reward,
    kind)}`` of its joined slots (:func:`bandits.dsjson_slots.with_slot_labels`). An entry that holds no JSON object comes as a
    :class:`replay.errors.BadEvent` in place of the event."""
    rewards = log.rewards()
    for sid, raw in log.raw_log(start):
        try:
            event = dsjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError as exc:
            yield sid, BadEvent(f"invalid JSON: {exc}"), None
            continue
        if not isinstance(event, dict):
            yield sid, BadEvent("event: must be a JSON object"), None
            continue
        if dsjson_slots.is_slots(event):
            joined = _slot_rewards(event, rewards)
            yield sid, dsjson_slots.with_slot_labels(event, joined or {}), joined
            continue
        joined = rewards.get(event.get("EventId"))
        yield sid, event if joined is None else dsjson.with_label(event, *joined), joined


def _slot_rewards(event: dict, rewards: dict) -> dict | None:
    """``{slot id: (reward, kind)}`` of a multi-slot event's joined slots, or None."""
    eid, out = event.get("EventId"), {}
    for outcome in event.get("_outcomes") or ():
        joined = rewards.get((eid, outcome.get("_id"))) if type(outcome) is dict else None
        if joined is not None:
            out[outcome["_id"]] = joined
    return out or None


# -- the source replay reads ----------------------------------------------------------
class RedisLog(EventLog):
    """Loop ``loop`` of the Redis at ``url`` as replay's log source, joined with its
    rewards as the learner sees them; its published models load candidates naming a
    ``model_version``. Raises :class:`replay.errors.LogError` naming the option at fault."""

    def __init__(self, url: str, loop: str | None):
        if not loop:
            raise LogError("--loop: required when --log is a Redis URL")
        try:
            self.log = LoopLog(connect(url), loop)
            if not self.log.exists():
                raise LogError(f"--loop: Redis at {url} has no decision log for loop {loop!r}")
        except StoreError as exc:
            raise LogError(f"--log: cannot read Redis at {url}: {exc.__cause__}") from exc
        except ValueError as exc:
            raise LogError(f"--log: bad Redis URL {url!r}: {exc}") from exc
        super().__init__(f"{url} loop {loop}", self._events, self._model_bytes)

    def _events(self):
        try:
            for sid, event, _ in labelled_log(self.log):
                yield f"entry {sid}", event
        except StoreError as exc:
            raise LogError(f"Redis: {exc.__cause__}") from exc

    def _model_bytes(self, version: int) -> bytes | None:
        try:
            return self.log.model_bytes(version)
        except StoreError as exc:
            raise LogError(f"Redis: {exc.__cause__}") from exc


def open_log(spec: str, loop: str | None = None) -> LogSource:
    """Replay's reader for ``spec``: a Redis URL (with ``loop``; a cluster's too,
    ``redis+cluster://host:port``) as a :class:`RedisLog`, else the file reader of
    :func:`replay.sources.open_log`."""
    if spec.startswith(REDIS_SCHEMES + tuple(CLUSTER_SCHEMES)):
        return RedisLog(spec, loop)
    return open_file(spec)


# -- cbserve export -------------------------------------------------------------------
@contextlib.contextmanager
def open_output(path: str):
    """The output file (gzip for ``.gz``), or a :class:`CommandError` naming the option.

    Written beside ``path`` and moved onto it when the block ends without an error, so
    a failed export leaves an earlier file of that name as it was."""
    tmp = f"{path}.{os.getpid()}.part"
    try:
        out = (gzip.open if path.endswith(".gz") else open)(tmp, "wb")
    except OSError as exc:
        raise CommandError(f"-o/--output: cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with out:
            yield out
    except BaseException:
        os.remove(tmp)
        raise
    _move(tmp, path, directory=False)


#: The file that marks a directory as a partitioned export (readers skip ``_`` names).
EXPORT_MARK = "_cbserve_export"


@contextlib.contextmanager
def output_path(path: str, directory: bool):
    """A temporary path beside ``path`` (a file, or a directory when ``directory``) that
    takes ``path``'s place when the block ends without an error; an earlier export of
    that name stays as it was until then. A directory is replaced only when it is empty
    or an earlier partitioned export (it holds :data:`EXPORT_MARK`)."""
    if directory:
        _check_replaceable(path)
    tmp = f"{path.rstrip(os.sep)}.{os.getpid()}.part"
    try:
        if directory:
            os.makedirs(tmp)
            open(os.path.join(tmp, EXPORT_MARK), "wb").close()
        else:
            open(tmp, "wb").close()
    except OSError as exc:
        raise CommandError(f"-o/--output: cannot write {path}: {exc.strerror or exc}") from exc
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    _move(tmp, path, directory)


def _move(tmp: str, path: str, directory: bool) -> None:
    """``tmp`` onto ``path``; an earlier export directory there (checked by
    :func:`_check_replaceable`) is set aside first and put back if the move fails, so
    ``path`` always holds a whole export."""
    old = f"{tmp}.old" if directory and os.path.isdir(path) else None
    try:
        if old:
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old:
                os.replace(old, path)
            raise
    except OSError as exc:
        _remove(tmp)
        raise CommandError(f"-o/--output: cannot write {path}: {exc.strerror or exc}") from exc
    if old:
        _remove(old)


def _check_replaceable(path: str) -> None:
    """Refuse a directory export onto a file, a symbolic link, or a directory that is
    neither empty nor an earlier export: replacing it would delete what it holds."""
    if os.path.islink(path):
        raise CommandError(f"-o/--output: {path} is a symbolic link; name the directory itself")
    if os.path.exists(path) and not os.path.isdir(path):
        raise CommandError(f"-o/--output: {path} is a file; a partitioned Parquet export "
                           "writes a directory (name a new one, or end the name in .parquet)")
    if os.path.isdir(path) and os.listdir(path) and \
            not os.path.isfile(os.path.join(path, EXPORT_MARK)):
        raise CommandError(f"-o/--output: {path} is not empty and not an earlier export "
                           f"(no {EXPORT_MARK} file in it); name another directory")


def _remove(path: str) -> None:
    import shutil

    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def is_parquet(path: str, fmt: str | None = None) -> bool:
    """Whether an export to ``path`` writes Parquet: ``--format parquet``, or a
    ``.parquet`` name."""
    return fmt == "parquet" or (fmt is None and path.endswith(".parquet"))


def pyarrow_modules():
    """``(pyarrow, pyarrow.parquet)``, or a :class:`CommandError` saying how to get them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise CommandError("-o/--output: a .parquet file needs pyarrow "
                           "(pip install 'cbserve[replay]'), or write .json / .json.gz") from exc
    return pa, pq


def export_dsjson(store: LoopLog, start: str, out) -> tuple:
    """Every decision from ``start`` on, labelled when rewarded:
    ``(decisions, rewarded, left out)``; left out are entries that hold no decision."""
    n = labelled = left_out = 0
    for _, event, joined in labelled_log(store, start):
        if isinstance(event, BadEvent):
            left_out += 1
            continue
        out.write(dsjson.dumps(event) + b"\n")
        n, labelled = n + 1, labelled + (joined is not None)
    return n, labelled, left_out


def parquet_row(event: dict, joined: tuple | None) -> dict:
    """One decision as a row of :mod:`replay.parquet_layout`: context and actions as the
    policy saw them (parsed by :func:`replay.logs.parse_event`), reward null when not
    rewarded. ``event`` is labelled when ``joined`` is not None (:func:`labelled_log`).
    Raises what ``parse_event`` raises for an event that layout cannot hold."""
    from replay.logs import MULTI_SLOT, parse_event
    from replay.parquet_layout import row

    if dsjson_slots.is_slots(event):
        raise Unsupported(MULTI_SLOT)
    if joined is None:  # a placeholder label, for parsing only
        event = dsjson.with_label(event, 0.0, "reward")
    (event_id, stamp, context, actions, chosen, propensity, parsed_reward, a,
     p) = parse_event(event)
    pmf = [0.0] * len(actions)
    for index, prob in zip(a, p):
        pmf[index - 1] = float(prob)
    return row(event_id, stamp, context, actions, chosen, propensity,
               parsed_reward if joined is not None else None, pmf)


def export_parquet(store: LoopLog, start: str, path: str, partitioned: bool) -> tuple:
    """Every decision from ``start`` on, one row each, into ``path`` (one file, or a
    directory partitioned by day): ``(rows, rewarded, left out)``; left out are the
    events the layout cannot hold (multi-slot, malformed)."""
    from replay.parquet_layout import LogWriter

    pyarrow_modules()
    n = labelled = left_out = 0
    writer = LogWriter(path, partitioned)
    try:
        for _, event, joined in labelled_log(store, start):
            if isinstance(event, BadEvent):
                left_out += 1
                continue
            try:
                writer.write(parquet_row(event, joined))
            except EventError:  # multi-slot, or malformed
                left_out += 1
                continue
            n, labelled = n + 1, labelled + (joined is not None)
    finally:
        writer.close()
    return n, labelled, left_out


def export_transitions(store: LoopStore, start: str, out) -> transitions.ExportCounts:
    """Write (s, a, p, r, s', done) records; the loop's session events are held in memory."""
    eps = transitions.episodes(event for _, event in store.scan_log(start))
    live = store.live_episodes({ep.session_id for ep in eps})
    counts = transitions.ExportCounts()
    for rec in transitions.transitions(eps, store.rewards(), store.ended(), live, counts):
        out.write(dsjson.dumps(rec) + b"\n")
    return counts
