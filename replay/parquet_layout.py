"""The Parquet layout of a log: one row per decision, columns replay reads without JSON.

=====================  ==============================  =========================================
column                 type                            holds
=====================  ==============================  =========================================
``event_id``           string                          the decision's id
``timestamp``          string (nullable)               when it was decided (ISO-8601)
``context``            string                          the context as JSON, exactly as decided on
``actions``            string                          JSON list of ``{"id", "features"}``
``chosen``             int64                           index of the logged action (0-based)
``propensity``         double                          its logged probability
``reward``             double (nullable)               the joined reward; null: none yet
``pmf``                list<double>                    the logging pmf, aligned with ``actions``
``context_features``   list<struct> (nullable)         the context flattened (below)
=====================  ==============================  =========================================

``context_features`` lists every feature of the context as ``{namespace, name, value,
x}``, in the context's order, as the hashing featurizer reads it: a number is ``value``
null and ``x`` the number (a boolean 0 or 1); a string is ``value`` the string and
``x`` 1; a list of strings gives one entry per item; a top-level feature has namespace
``""``; metadata keys (``_x``) and nulls are left out. A context this cannot hold
exactly (an embedding, a nested object, a number past ±1e15) has null here and is read
from ``context``. ``actions`` repeats across rows and is dictionary-encoded.

A long log is a directory partitioned by day, ``day=YYYY-MM-DD/part-NNNNN.parquet`` (day of
the timestamp, UTC; ``day=unknown`` without one): a reader can take a range of days, and
every file is a shard another machine can read alone.

>>> context_features({"user": {"age": 31, "country": "FR", "tags": ["a", "b"]}, "_meta": 1})
[('user', 'age', None, 31.0), ('user', 'country', 'FR', 1.0), ('user', 'tags', 'a', 1.0), ('user', 'tags', 'b', 1.0)]
>>> context_features({"user": {"embedding": [0.1, 0.2]}}) is None
True
>>> day_of("2026-11-26T07:45:00.123Z"), day_of(None)
('2026-11-26', 'unknown')
"""
from __future__ import annotations

import os
import re

import orjson

from bandits.inputs import DEFAULT_NAMESPACE, bounded

COLUMNS = ("event_id", "timestamp", "context", "actions", "chosen", "propensity", "reward",
           "pmf", "context_features")
#: The columns every Parquet log has (``context_features`` may be absent in older files).
REQUIRED = COLUMNS[:-1]
FEATURE_FIELDS = ("namespace", "name", "value", "x")
#: Rows per row group (and per batch held in memory while writing).
ROW_GROUP = 10_000
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def schema():
    """The pyarrow schema of the layout."""
    import pyarrow as pa

    feature = pa.struct([("namespace", pa.string()), ("name", pa.string()),
                         ("value", pa.string()), ("x", pa.float64())])
    types = {"chosen": pa.int64(), "propensity": pa.float64(), "reward": pa.float64(),
             "pmf": pa.list_(pa.float64()), "context_features": pa.list_(feature)}
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])


def context_features(context: dict) -> list | None:
    """``[(namespace, name, value, x)]`` of a validated context, or None when the
    flat layout cannot hold it exactly (then readers parse ``context``)."""
    out, loose = [], []
    for ns, feats in context.items():
        if ns.startswith("_"):
            continue
        if type(feats) is dict:
            if not _flatten(ns, feats, out):
                return None
        else:
            loose.append((ns, feats))
    if loose and not _flatten(DEFAULT_NAMESPACE, dict(loose), out):
        return None
    return out


def _flatten(ns: str, feats: dict, out: list) -> bool:
    for name, value in feats.items():
        if type(name) is not str or name.startswith("_") or value is None:
            continue
        kind = type(value)
        if kind is str:
            out.append((ns, name, value, 1.0))
        elif kind in (int, float, bool):
            if not bounded(value):
                return False
            out.append((ns, name, None, float(value)))
        elif kind is list and value and all(type(v) is str for v in value):
            out.extend((ns, name, v, 1.0) for v in value)
        else:  # an embedding, a nested object, an empty list: read from the JSON
            return False
    return True


def day_of(timestamp) -> str:
    """The partition of a row: the timestamp's date, or ``unknown``."""
    if isinstance(timestamp, str) and _DAY.match(timestamp):
        return timestamp[:10]
    return "unknown"


def row(event_id, timestamp, context, actions, chosen, propensity, reward, pmf) -> dict:
    """One decision as a row of the layout (``actions`` as ``[{"id", "features"}]``)."""
    feats = context_features(context)
    return {"event_id": event_id, "timestamp": timestamp,
            "context": orjson.dumps(context).decode(), "actions": orjson.dumps(actions).decode(),
            "chosen": chosen, "propensity": propensity, "reward": reward, "pmf": pmf,
            "context_features": None if feats is None else
            [dict(zip(FEATURE_FIELDS, f)) for f in feats]}


class LogWriter:
    """Rows into one Parquet file, or into a directory partitioned by day.

    Partitioned, the files of the :data:`OPEN_DAYS` days written last stay open (a log
    comes in time order, give or take clocks around midnight); a day written again
    after its file was closed gets another ``part-NNNNN.parquet``. At most
    :data:`ROW_GROUP` rows per open day wait in memory.
    """

    def __init__(self, path: str, partitioned: bool):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa, self._pq, self._schema = pa, pq, schema()
        self.path, self.partitioned = path, partitioned
        self._open: dict = {}     # day -> [writer or None, pending rows], oldest first
        self._parts: dict = {}    # day -> files written

    def write(self, record: dict) -> None:
        day = day_of(record["timestamp"]) if self.partitioned else ""
        entry = self._open.pop(day, None)
        if entry is None:
            if len(self._open) >= OPEN_DAYS:
                self._close(next(iter(self._open)))
            entry = [None, []]
        self._open[day] = entry  # the most recent last
        entry[1].append(record)
        if len(entry[1]) >= ROW_GROUP:
            self._flush(day, entry)

    def _flush(self, day: str, entry: list) -> None:
        if not entry[1]:
            return
        if entry[0] is None:
            target = self.path
            if self.partitioned:
                folder = os.path.join(self.path, f"day={day}")
                os.makedirs(folder, exist_ok=True)
                part = self._parts.get(day, 0)
                self._parts[day] = part + 1
                target = os.path.join(folder, f"part-{part:05d}.parquet")
            entry[0] = self._pq.ParquetWriter(target, self._schema)
        entry[0].write_table(self._pa.Table.from_pylist(entry[1], self._schema))
        entry[1] = []

    def _close(self, day: str) -> None:
        entry = self._open.pop(day)
        self._flush(day, entry)
        if entry[0] is not None:
            entry[0].close()

    def close(self) -> None:
        if not self.partitioned and not self._open:
            self._open[""] = [self._pq.ParquetWriter(self.path, self._schema), []]  # empty log
        for day in list(self._open):
            self._close(day)


#: Days whose files a partitioned LogWriter keeps open at once.
OPEN_DAYS = 4


def write_parquet(rounds, path: str) -> None:
    """Write logged rounds (:class:`replay.logs.LoggedRounds`) in this layout: one file
    for a ``.parquet`` path, else a directory partitioned by day."""
    writer = LogWriter(path, not path.endswith(".parquet"))
    for j in range(len(rounds)):
        k = int(rounds.n_actions[j])
        writer.write(row(rounds.event_ids[j], rounds.timestamps[j], rounds.contexts[j],
                         list(rounds.actions[j]), int(rounds.chosen[j]),
                         float(rounds.propensities[j]), float(rounds.rewards[j]),
                         rounds.logging_pmf[j, :k].tolist()))
    writer.close()
