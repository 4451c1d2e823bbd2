"""Parquet logs (one file, or a directory partitioned by day) read in record batches.

The layout is :mod:`replay.parquet_layout`'s. The reader is pyarrow's dataset API: it
streams record batches out of any number of files with only the columns asked for, in
bounded memory, and hands each a batch of columns replay turns into arrays without a
Python object per row: probabilities, rewards and pmfs come as numpy arrays, the
``actions`` strings dictionary-decoded (each distinct set parsed once), the contexts as
token columns (:mod:`replay.tokens`) read from ``context_features``. Event ids,
timestamps and the contexts' JSON are read from the file, and a context parsed, only
when something reads them round by round.

Rows the layout says nothing wrong about are checked as the DSJSON reader checks
events (pmf, chosen index, propensity, reward); a bad row is counted with its location
(``row N``, 1-based over the whole dataset) and skipped.
"""
from __future__ import annotations

import os

import numpy as np
import orjson

from bandits import BanditError
from bandits.inputs import normalize_actions

from .errors import LogError
from .logs import PMF_SUM_TOLERANCE, Lazy, LoggedRounds
from .parquet_layout import COLUMNS, FEATURE_FIELDS, REQUIRED, ROW_GROUP
from .readers import CHUNK_ROUNDS, MAX_PROBLEMS, LogSource, ReadReport
from .tokens import MAX_TOKENS, TokenColumns

#: Distinct ``actions`` strings kept parsed between batches.
ACTION_SET_LIMIT = 10_000
_FEATURE_DICT = [f"context_features.list.element.{f}" for f in FEATURE_FIELDS[:3]]
#: Columns read only when something asks for a row's value (a round-by-round policy,
#: a message): scoring in token space never does.
_ON_DEMAND = ("event_id", "timestamp", "context")


class ParquetLog(LogSource):
    """A Parquet log: a ``.parquet`` file or a directory of them (``day=…`` partitions)."""

    def __init__(self, path: str):
        super().__init__(path)
        if not os.path.exists(path):
            raise LogError(f"--log: no such file or directory {path!r}")
        ds = _dataset_module()
        try:
            dataset = ds.dataset(path, format="parquet", partitioning="hive")
            names = dataset.schema.names
        except Exception as exc:  # pyarrow raises its own ArrowInvalid family
            raise LogError(f"--log: {path!r} is not a readable Parquet log: {exc}") from exc
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise LogError(f"--log: {path!r} lacks the columns {', '.join(missing)} "
                           f"(expected {', '.join(COLUMNS)})")
        self.path = path
        self._files = sorted(dataset.files)
        self._sets: dict = {}

    #: Rounds per chunk an evaluation asks for: columnar work pays per batch, not per row.
    chunk_rounds = ROW_GROUP

    def files(self) -> list:
        """The log's files in reading order (by path: day partitions in date order), the
        shards of a spread evaluation."""
        return list(self._files)

    def chunks(self, size: int = CHUNK_ROUNDS, limit: int | None = None):
        """Rewarded rounds in log order, ``size`` per chunk (at most ``limit`` in all)."""
        self.report = ReadReport(self.name)
        base = 0
        for path in self._files:
            reader, columns = _open(path)
            within = 0
            for group in range(reader.num_row_groups):  # a batch never spans row groups
                for batch in reader.iter_batches(batch_size=max(size, ROW_GROUP),
                                                 row_groups=[group], columns=columns):
                    for start in range(0, batch.num_rows, size):
                        if limit is not None and self.report.rounds >= limit:
                            return
                        part = batch.slice(start, size)
                        rounds = self._rounds(part, base + start, limit, (path, within + start))
                        if rounds is not None:
                            yield rounds
                    base += batch.num_rows
                    within += batch.num_rows

    # -- one batch ----------------------------------------------------------------------
    def _rounds(self, batch, base: int, limit, origin) -> LoggedRounds | None:
        """The rewarded, well-formed rows of ``batch`` (row ``base`` of the log, row
        ``origin[1]`` of file ``origin[0]``) as rounds."""
        report, n = self.report, batch.num_rows
        col = batch.column
        reward = col("reward")
        rewarded = ~np.asarray(reward.is_null().to_numpy(zero_copy_only=False))
        sets, set_index = self._action_sets(col("actions"))
        pmf, lengths = _pmfs(col("pmf"))
        r = _numpy(reward, 0.0)
        chosen = _numpy(col("chosen"), -1).astype(np.int64)
        p = _numpy(col("propensity"), np.nan)
        k = np.array([len(s) if s is not None else -1 for s in sets], np.int64)[set_index]
        problems = [
            (k < 0, "actions: must be a JSON list of {\"id\", \"features\"} objects with distinct ids"),
            (lengths != k, "pmf: must hold one probability per action"),
            ((chosen < 0) | (chosen >= np.maximum(k, 0)), "chosen: must be an action index"),
            (~((p > 0.0) & (p <= 1.0)), "propensity: must be in (0, 1]"),
            (~np.isfinite(r), "reward: must be a finite number"),
            (~((pmf.min(axis=1, initial=0.0) >= 0.0) & (pmf.max(axis=1, initial=0.0) <= 1.0)
               & (np.abs(pmf.sum(axis=1) - 1.0) <= PMF_SUM_TOLERANCE)),
             "pmf: must be probabilities summing to 1"),
        ]
        good = rewarded.copy()
        for bad, _ in problems:
            good &= ~bad
        keep = np.flatnonzero(good)
        if limit is not None and len(keep) >= limit - report.rounds:
            keep = keep[:max(0, limit - report.rounds)]
            n = int(keep[-1]) + 1 if len(keep) else 0  # the rows read: up to the last kept one
        report.records += n
        report.unrewarded += int(n - rewarded[:n].sum())
        good = rewarded[:n].copy()
        for bad, message in problems:
            hit = np.flatnonzero(bad[:n] & good)
            room = max(0, MAX_PROBLEMS - len(report.problems))
            for j in hit[:room]:
                report.problem(f"row {base + j + 1}", message)
            report.malformed += max(0, len(hit) - room)
            good &= ~bad[:n]
        if not len(keep):
            return None
        report.rounds += len(keep)
        read = _on_demand(origin, n)
        return LoggedRounds(
            event_ids=Lazy(lambda i: read("event_id")[i].as_py(), keep),
            timestamps=Lazy(lambda i: read("timestamp")[i].as_py(), keep),
            contexts=Lazy(lambda i: _context(read("context")[i].as_py()), keep),
            actions=Lazy(lambda i: [{"id": a, "features": f} for a, f in sets[set_index[i]]], keep),
            chosen=chosen[keep], propensities=p[keep], rewards=r[keep],
            logging_pmf=pmf[keep, :int(k[keep].max())], n_actions=k[keep],
            where=Lazy(lambda i: f"row {base + i + 1}", keep),
            columns=self._token_columns(batch, keep, set_index, sets))

    def _action_sets(self, actions) -> tuple:
        """``(pairs per dictionary entry (None: invalid), each row's entry)``."""
        import pyarrow as pa

        if not isinstance(actions.type, pa.DictionaryType):
            actions = actions.dictionary_encode()
        sets = []
        for text in actions.dictionary.to_pylist():
            pairs = self._sets.get(text)
            if pairs is None:
                pairs = _parse_actions(text)
                if len(self._sets) >= ACTION_SET_LIMIT:
                    self._sets.clear()
                self._sets[text] = pairs
            sets.append(pairs or None)
        index = _numpy(actions.indices, len(sets))
        return sets + [None], index

    def _token_columns(self, batch, keep, set_index, sets) -> TokenColumns | None:
        """The kept rows' contexts as token columns, or None when a row has none."""
        if "context_features" not in batch.schema.names:
            return None
        feats = batch.column("context_features")
        if len(keep) < len(feats):
            feats = feats.take(keep)
        if feats.null_count:
            return None
        import pyarrow as pa

        rows = np.repeat(np.arange(len(keep)), np.diff(feats.offsets.to_numpy()))
        entries = feats.flatten()
        parts = [entries.field(name) for name in FEATURE_FIELDS[:3]]
        parts = [a if isinstance(a.type, pa.DictionaryType) else a.dictionary_encode() for a in parts]
        codes = [_numpy(a.indices, -1).astype(np.int64) for a in parts]
        sizes = [len(a.dictionary) for a in parts]
        key = (codes[0] * sizes[1] + codes[1]) * (sizes[2] + 1) + codes[2] + 1
        unique, index = _compact(key, sizes[0] * sizes[1] * (sizes[2] + 1))
        if len(unique) > MAX_TOKENS:  # read round by round; V would be n × U
            return None
        dicts = [a.dictionary.to_pylist() for a in parts]
        tokens = []
        for value in unique.tolist():
            rest, v = divmod(value, sizes[2] + 1)
            n_idx, name_idx = divmod(rest, sizes[1])
            tokens.append((dicts[0][n_idx], dicts[1][name_idx], None if v == 0 else dicts[2][v - 1]))
        x = entries.field("x").to_numpy(zero_copy_only=False)
        return TokenColumns.from_codes(len(keep), rows, index, tokens, x, set_index[keep], sets)


def _open(path: str) -> tuple:
    """``(pyarrow ParquetFile, the columns to read)`` of one file of the log; strings
    that repeat read as dictionaries (the actions, and the context features' names)."""
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(path).schema_arrow.names
        dictionary = ["actions"] + (_FEATURE_DICT if "context_features" in names else [])
        reader = pq.ParquetFile(path, read_dictionary=dictionary, pre_buffer=False)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid family
        raise LogError(f"--log: {path!r} is not a readable Parquet file: {exc}") from exc
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise LogError(f"--log: {path!r} lacks the columns {', '.join(missing)}")
    return reader, [c for c in COLUMNS if c not in _ON_DEMAND and c in names]


def _compact(key: np.ndarray, size: int) -> tuple:
    """``(distinct keys, each key's index among them)``; a presence table when the keys'
    range is small, else a hash (pyarrow's dictionary encoding)."""
    if size <= 1 << 20:
        present = np.zeros(size, bool)
        present[key] = True
        return np.flatnonzero(present), (np.cumsum(present) - 1)[key]
    import pyarrow as pa

    encoded = pa.array(key).dictionary_encode()
    return encoded.dictionary.to_numpy(), encoded.indices.to_numpy().astype(np.int64)


def _numpy(array, fill):
    """A numeric Arrow array as numpy, nulls as ``fill``."""
    if array.null_count:
        array = array.fill_null(fill)
    return array.to_numpy(zero_copy_only=False)


def _pmfs(column) -> tuple:
    """``(pmf (n, K) padded with 0, length of each row)`` of a list<double> column."""
    offsets = column.offsets.to_numpy()
    lengths = np.diff(offsets)
    values = column.flatten().to_numpy(zero_copy_only=False)
    lengths = np.where(column.is_null().to_numpy(zero_copy_only=False), -1, lengths)
    width = max(1, int(lengths.max(initial=1)))
    if (lengths == width).all():
        return values.reshape(len(lengths), width), lengths
    out = np.zeros((len(lengths), width))
    rows = np.repeat(np.arange(len(lengths)), np.maximum(lengths, 0))
    starts = np.repeat(offsets[:-1] - offsets[0], np.maximum(lengths, 0))
    out[rows, np.arange(len(rows)) - starts] = values[:len(rows)]
    return out, lengths


def _on_demand(origin: tuple, n: int):
    """``read(column)``: one of :data:`_ON_DEMAND` for the n rows of a batch (row
    ``origin[1]`` of file ``origin[0]``), read from the file the first time it is asked
    for, from the row groups that hold the batch only."""
    loaded: dict = {}

    def read(column: str):
        if column not in loaded:
            loaded[column] = _read_rows(*origin, n, column)
        return loaded[column]
    return read


def _read_rows(path: str, start: int, n: int, column: str):
    """Column ``column`` of rows ``start:start + n`` of one Parquet file."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    groups, first, row = [], None, 0
    for g in range(meta.num_row_groups):
        size = meta.row_group(g).num_rows
        if row + size > start and row < start + n:
            groups.append(g)
            first = row if first is None else first
        row += size
    table = pq.ParquetFile(path).read_row_groups(groups, columns=[column])
    return table.column(column).slice(start - first, n).combine_chunks()


def _parse_actions(text) -> list | None:
    """Validated ``[(id, features)]`` of an ``actions`` string, or None."""
    try:
        actions = orjson.loads(text) if text is not None else None
        return normalize_actions(actions) if isinstance(actions, list) else None
    except (orjson.JSONDecodeError, BanditError):
        return None


def _context(text):
    """The context of a row; a row whose JSON is broken gives its text, which every
    policy refuses with a message (the round is then dropped and named)."""
    try:
        return orjson.loads(text) if text is not None else {}
    except orjson.JSONDecodeError:
        return text


def _dataset_module():
    try:
        import pyarrow.dataset as ds
    except ImportError as exc:
        raise LogError("Parquet logs need pyarrow: pip install 'cbserve[replay]'") from exc
    return ds
