"""``cbserve export``: a loop's log as DSJSON lines (``.gz``: gzip), as Parquet
(``.parquet``, the layout :class:`replay.readers.ParquetLog` reads), or as the
transitions of a sequential loop's episodes (``--transitions``).

The output file is opened before the log is read, so a path that cannot be written
fails at once with a message naming ``-o/--output``.
"""
from __future__ import annotations

import gzip

import orjson

from bandits import dsjson

from . import transitions
from .errors import ServiceError
from .store import LoopStore

#: Decisions per Parquet row group (and per batch held in memory while writing).
PARQUET_BATCH = 10_000


def open_output(path: str, parquet: bool = False):
    """The output file (gzip for ``.gz``), or a :class:`ServiceError` naming the option."""
    try:
        if parquet:
            return open(path, "wb")
        return (gzip.open if path.endswith(".gz") else open)(path, "wb")
    except OSError as exc:
        raise ServiceError(f"-o/--output: cannot write {path}: {exc.strerror}") from exc


def is_parquet(path: str) -> bool:
    return path.endswith(".parquet")


def pyarrow_modules():
    """``(pyarrow, pyarrow.parquet)``, or a :class:`ServiceError` saying how to get them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ServiceError("-o/--output: a .parquet file needs pyarrow "
                           "(pip install 'cbserve[replay]'), or write .json / .json.gz") from exc
    return pa, pq


def export_dsjson(store: LoopStore, start: str, out) -> tuple:
    """Every decision from ``start`` on, labelled when rewarded: ``(decisions, rewarded)``."""
    rewards = store.rewards()
    n = labelled = 0
    for _, event in store.scan_log(start):
        joined = rewards.get(event["EventId"])
        if joined is not None:
            event = dsjson.with_label(event, joined[0], joined[1])
            labelled += 1
        out.write(dsjson.dumps(event) + b"\n")
        n += 1
    return n, labelled


def parquet_row(event: dict, joined: tuple | None) -> dict:
    """One decision in the Parquet layout: context and actions as the policy saw them
    (parsed by :func:`replay.logs.parse_event`), reward null when not rewarded.
    Raises what ``parse_event`` raises for an event that layout cannot hold."""
    from replay.logs import parse_event

    reward, kind = joined if joined is not None else (0.0, "reward")
    (event_id, stamp, context, actions, chosen, propensity, parsed_reward, a,
     p) = parse_event(dsjson.with_label(event, reward, kind))
    pmf = [0.0] * len(actions)
    for index, prob in zip(a, p):
        pmf[index - 1] = float(prob)
    return {"event_id": event_id, "timestamp": stamp,
            "context": orjson.dumps(context).decode(), "actions": orjson.dumps(actions).decode(),
            "chosen": chosen, "propensity": propensity,
            "reward": parsed_reward if joined is not None else None, "pmf": pmf}


def export_parquet(store: LoopStore, start: str, out) -> tuple:
    """Every decision from ``start`` on, one row each: ``(rows, rewarded, left out)``;
    left out are the events the layout cannot hold (multi-slot, malformed)."""
    from replay.logs import BadEvent, SkipLearn, Unsupported
    from replay.readers import PARQUET_COLUMNS

    pa, pq = pyarrow_modules()
    types = {"chosen": pa.int64(), "propensity": pa.float64(), "reward": pa.float64(),
             "pmf": pa.list_(pa.float64())}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in PARQUET_COLUMNS])
    rewards = store.rewards()
    n = labelled = left_out = 0
    batch = []
    with pq.ParquetWriter(out, schema) as writer:
        for _, event in store.scan_log(start):
            joined = rewards.get(event.get("EventId"))
            try:
                batch.append(parquet_row(event, joined))
            except (BadEvent, SkipLearn, Unsupported):
                left_out += 1
                continue
            n, labelled = n + 1, labelled + (joined is not None)
            if len(batch) >= PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema))
    return n, labelled, left_out


def export_transitions(store: LoopStore, start: str, out) -> transitions.ExportCounts:
    """Write (s, a, p, r, s', done) records; the loop's session events are held in memory."""
    eps = transitions.episodes(event for _, event in store.scan_log(start))
    live = store.live_episodes({ep.session_id for ep in eps})
    counts = transitions.ExportCounts()
    for rec in transitions.transitions(eps, store.rewards(), store.ended(), live, counts):
        out.write(dsjson.dumps(rec) + b"\n")
    return counts
