"""A large synthetic log in cbserve's Parquet layout, built column by column.

Rows like scripts/bench_replay.py's DSJSON events: a context of 8 numbers
(``user.f0``..``f7``) and one string (``device.os``), the same 10 actions with a
``kind`` and a ``quality`` each, a logger that is uniform over them, and a reward that
prefers the action ``argmax_k (x·w_k)``. Every column is built with pyarrow compute
(no Python object per row), so 10,000,000 rows take about a minute; the ``context``
JSON and ``context_features`` hold the same context, as cbserve's export writes them
(a test checks the two agree on a sample).

Usage (a module of the benchmark): ``write_big_log(path, rows, actions, seed, days)``
writes ``path/day=YYYY-MM-DD/part-00000.parquet``, one file per day.
"""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from replay.parquet_layout import ROW_GROUP, schema

FEATURES = 8
BLOCK = 200_000


def actions(k: int) -> list:
    return [{"id": f"item-{j}", "features": {"item": {"kind": f"k{j % 3}",
                                                       "quality": round(j / k, 3)}}}
            for j in range(k)]


def write_big_log(path: str, rows: int, k: int = 10, seed: int = 0, days: int = 10) -> int:
    """Write ``rows`` decisions over ``days`` days; returns the bytes written."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(FEATURES, k))
    per_day = -(-rows // days)
    start = dt.date(2026, 11, 1)
    for day in range(days):
        lo, hi = day * per_day, min(rows, (day + 1) * per_day)
        if lo >= hi:
            break
        date = (start + dt.timedelta(days=day)).isoformat()
        folder = os.path.join(path, f"day={date}")
        os.makedirs(folder, exist_ok=True)
        with pq.ParquetWriter(os.path.join(folder, "part-00000.parquet"), schema()) as writer:
            for b in range(lo, hi, BLOCK):
                writer.write_table(_block(rng, weights, b, min(hi, b + BLOCK), k, date),
                                   row_group_size=ROW_GROUP)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _block(rng, weights, lo: int, hi: int, k: int, date: str) -> pa.Table:
    n = hi - lo
    x = rng.normal(size=(n, FEATURES)).round(4)
    ios = x[:, 0] > 0
    chosen = rng.integers(k, size=n)
    best = (x @ weights).argmax(axis=1)
    reward = (rng.random(n) < np.where(chosen == best, 0.5, 0.2)).astype(np.float64)
    ids = pc.binary_join_element_wise("ev-", pa.array(np.arange(lo, hi)).cast(pa.string()), "")
    seconds = np.arange(lo, hi) % 86_400
    stamp = pc.binary_join_element_wise(
        f"{date}T", pc.strftime(pa.array(seconds * 1_000_000, pa.timestamp("us")), "%H:%M:%S"),
        "Z", "")
    parts = [pa.scalar('{"user":{')]
    for j in range(FEATURES):
        parts += [pa.scalar(f'{"," if j else ""}"f{j}":'), pa.array(x[:, j]).cast(pa.string())]
    parts += [pa.array(np.where(ios, '},"device":{"os":"ios"}}', '},"device":{"os":"android"}}'))]
    context = pc.binary_join_element_wise(*parts, "")
    acts = orjson.dumps(actions(k)).decode()
    action_col = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([acts]))
    pmf = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * k),
                                   pa.array(np.full(n * k, 1.0 / k)))
    return pa.table({
        "event_id": ids, "timestamp": stamp, "context": context,
        "actions": action_col.cast(pa.string()), "chosen": pa.array(chosen, pa.int64()),
        "propensity": pa.array(np.full(n, 1.0 / k)), "reward": pa.array(reward), "pmf": pmf,
        "context_features": _features(x, ios)}, schema=schema())


def _features(x: np.ndarray, ios: np.ndarray) -> pa.Array:
    """Per row: f0..f7 (numbers) then device.os (a string), as the export flattens them."""
    n, per = len(x), FEATURES + 1
    namespace = pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.r_[np.zeros(FEATURES), 1].astype(np.int32), n)), pa.array(["user", "device"]))
    name = pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.arange(per, dtype=np.int32), n)),
        pa.array([f"f{j}" for j in range(FEATURES)] + ["os"]))
    codes = np.full((n, per), -1, np.int32)
    codes[:, -1] = np.where(ios, 0, 1)
    value = pa.DictionaryArray.from_arrays(pa.array(codes.ravel(), mask=codes.ravel() < 0),
                                           pa.array(["ios", "android"]))
    xs = np.column_stack((x, np.ones(n))).ravel()
    entries = pa.StructArray.from_arrays(
        [namespace.cast(pa.string()), name.cast(pa.string()), value.cast(pa.string()), pa.array(xs)],
        names=["namespace", "name", "value", "x"])
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * per), entries)
