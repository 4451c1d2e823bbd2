"""A loop's health over a window: figures from its per-minute buckets, and a status.

Pure: :mod:`service.store.health` reads the buckets (written by the rank and join
scripts, :mod:`service.store.lua`) and the learner's state in one round trip; this
module adds them up, draws the series and applies the status rules of the loop's
``health`` table. ``GET /v1/loops/<loop>/health`` answers :func:`report`; ``/metrics``
exports the same figures over :data:`METRICS_WINDOW`.

A minute is Unix time // 60. A window of W minutes ending at minute ``m`` holds the
minutes m − W + 1 … m (the current one still filling); the previous window the W
minutes before it. A reward counts in the minute it was joined, a decision in the
minute it was logged.
"""
from __future__ import annotations

import math
import re

from .figures import mean_interval
from .health_status import LEVELS, assess, level  # noqa: F401 - LEVELS is part of this API

#: Seconds of the window ``/metrics`` computes its health figures over.
METRICS_WINDOW = 3600
#: Window of ``GET /v1/loops/<loop>/health`` without ``?window=``.
DEFAULT_WINDOW = "1h"
#: The action id a bucket counts every action under once it tracks ``health.max_actions``.
OTHER = "_other"
#: Minutes per series point, the finest first: the first giving at most
#: :data:`MAX_POINTS` points is used (1 minute up to a 6 h window).
STEPS = (1, 5, 15, 60, 240, 1440)
MAX_POINTS = 360

_UNITS = {"m": 60, "h": 3600, "d": 86400}
_WINDOW = re.compile(r"([1-9][0-9]{0,6})([mhd])")


class WindowError(ValueError):
    """``window`` is not a duration this loop can answer."""


def parse_window(text: str | None, retention: float) -> int:
    """Seconds of a ``window`` such as ``"15m"``, ``"1h"``, ``"1d"`` (a whole number
    of minutes, hours or days, at most the buckets' ``retention``).

    >>> parse_window("15m", 7 * 86400), parse_window(None, 86400), parse_window("7d", 7 * 86400)
    (900, 3600, 604800)
    >>> parse_window("2d", 86400)
    Traceback (most recent call last):
    ...
    service.health.WindowError: window: '2d' is longer than the buckets are kept (health.retention = 1d)
    """
    text = DEFAULT_WINDOW if text is None else text
    m = _WINDOW.fullmatch(text.strip())
    if not m:
        shown = text if len(text) <= 32 else text[:32] + "..."
        raise WindowError(f"window: {shown!r} is not a duration (a whole number of minutes, "
                          "hours or days, e.g. '15m', '1h', '1d')")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > retention:
        raise WindowError(f"window: {text!r} is longer than the buckets are kept "
                          f"(health.retention = {_duration(retention)})")
    return seconds


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# -- buckets -------------------------------------------------------------------------
def empty() -> dict:
    """The figures of a minute nothing happened in (the shape every bucket has)."""
    return {"d": 0, "df": 0, "x": 0, "p": None, "lu": 0, "lx": None, "n": 0, "nd": 0,
            "ac": 0, "s": 0.0, "q": 0.0, "versions": {}, "actions": {}}


_COUNTS = {"d", "df", "x", "n", "nd", "ac", "lu"}
_SUMS = {"s", "q"}
# per-version and per-action fields: prefix -> (table, slot, float?)
_KEYED = {"vd": ("versions", 0, False), "vn": ("versions", 1, False), "vs": ("versions", 2, True),
          "vq": ("versions", 3, True), "ad": ("actions", 0, False), "an": ("actions", 1, False),
          "as": ("actions", 2, True)}
_SLOTS = {"versions": 4, "actions": 3}


def parse_bucket(raw: dict) -> dict:
    """An ``HGETALL`` of a bucket (:mod:`service.store.lua` names its fields).

    ``versions``: version -> [decisions, rewards, reward sum, sum of squares];
    ``actions``: id -> [decisions, rewards, reward sum].

    A bucket written before latencies were counted in microseconds holds ``ls`` and
    ``lm`` in seconds: they count as well.

    >>> parse_bucket({b"d": b"2", b"ls": b"0.003", b"lu": b"1000", b"lm": b"0.002"})["lu"]
    4000
    >>> b = parse_bucket({b"d": b"2", b"p": b"0.25", b"vd:3": b"2", b"ad:x": b"2",
    ...                   b"n": b"1", b"s": b"0.5", b"vn:3": b"1", b"vs:3": b"0.5"})
    >>> b["d"], b["p"], b["versions"], b["actions"]
    (2, 0.25, {3: [2, 1, 0.5, 0.0]}, {'x': [2, 0, 0.0]})
    """
    out = empty()
    for k, v in raw.items():
        name = k.decode() if isinstance(k, bytes) else k
        text = v.decode() if isinstance(v, bytes) else v
        if name in _COUNTS:
            out[name] += int(text)
        elif name in _SUMS:
            out[name] = float(text)
        elif name == "p":
            out[name] = float(text)
        elif name == "lx":
            out[name] = max(out["lx"] or 0, int(text))
        elif name in ("ls", "lm"):  # seconds, as buckets written before microseconds hold them
            us = round(float(text) * 1e6)
            if name == "ls":
                out["lu"] += us
            else:
                out["lx"] = max(out["lx"] or 0, us)
        else:
            prefix, _, key = name.partition(":")
            if prefix not in _KEYED or not key:
                continue  # "na" and fields of a later format
            table, slot, is_float = _KEYED[prefix]
            if table == "versions":
                if not key.isdigit():
                    continue
                key = int(key)
            row = out[table].setdefault(key, [0, 0, 0.0, 0.0][:_SLOTS[table]])
            row[slot] = float(text) if is_float else int(text)
    return out


def merge(buckets) -> dict:
    """The figures of several minutes together.

    >>> m = merge([parse_bucket({b"d": b"1", b"p": b"0.5"}), parse_bucket({b"d": b"2", b"p": b"0.2"})])
    >>> m["d"], m["p"]
    (3, 0.2)
    """
    out = empty()
    for b in buckets:
        for k in _COUNTS | _SUMS:
            out[k] += b[k]
        if b["p"] is not None and (out["p"] is None or b["p"] < out["p"]):
            out["p"] = b["p"]
        if b["lx"] is not None and (out["lx"] is None or b["lx"] > out["lx"]):
            out["lx"] = b["lx"]
        for table in ("versions", "actions"):
            rows = out[table]
            for key, row in b[table].items():
                mine = rows.get(key)
                if mine is None:
                    rows[key] = list(row)
                else:
                    for i, x in enumerate(row):
                        mine[i] += x
    return out


def cap_actions(total: dict, limit: int) -> dict:
    """``total`` with at most ``limit`` action ids besides :data:`OTHER`, as in one
    bucket: the most decided ones, the rest added to :data:`OTHER` (buckets of
    different minutes may track different ids)."""
    rows = total["actions"]
    ranked = sorted((k for k in rows if k != OTHER), key=lambda k: (-rows[k][0], k))
    if len(ranked) <= limit:
        return total
    kept = {k: rows[k] for k in ranked[:limit]}
    other = list(rows.get(OTHER, [0, 0, 0.0]))
    for k in ranked[limit:]:
        other = [a + b for a, b in zip(other, rows[k])]
    kept[OTHER] = other
    return {**total, "actions": kept}


# -- figures -------------------------------------------------------------------------
def _ratio(a, b):
    return a / b if b else None


def reward_interval(n: int, total: float, total_sq: float) -> dict:
    """``{"mean", "low", "high", "n"}``: the 95 % normal interval of the mean reward.

    >>> reward_interval(4, 2.0, 2.0)
    {'mean': 0.5, 'low': -0.0658032638058333, 'high': 1.0658032638058333, 'n': 4}
    """
    mean, low, high = mean_interval(n, total, total_sq)
    return {"mean": mean, "low": low, "high": high, "n": n}


def figures(total: dict) -> dict:
    """The headline figures of merged buckets (see ``docs/monitoring.md``).

    >>> f = figures(parse_bucket({b"d": b"4", b"x": b"1", b"n": b"2", b"nd": b"1",
    ...                           b"s": b"1", b"q": b"1", b"lu": b"10000", b"lx": b"4000"}))
    >>> f["join_rate"], f["default_rate"], f["exploration_share"], f["latency_ms"]
    (0.5, 0.5, 0.25, {'mean': 2.5, 'max': 4.0})
    """
    d, n = total["d"], total["n"]
    return {"decisions": d, "rewards": n, "join_rate": _ratio(n, d),
            "default_rate": _ratio(total["nd"], n), "exploration_share": _ratio(total["x"], d),
            "min_propensity": total["p"],
            "latency_ms": {"mean": _ratio(total["lu"] / 1000.0, d),
                           "max": None if total["lx"] is None else total["lx"] / 1000.0},
            "reward": reward_interval(n, total["s"], total["q"])}


def versions(total: dict) -> list:
    """One row per model version, oldest first."""
    out = []
    for v, (d, n, s, q) in sorted(total["versions"].items()):
        mean, low, high = mean_interval(n, s, q)
        out.append({"version": v, "decisions": d, "rewards": n, "mean": mean, "low": low,
                    "high": high})
    return out


def actions(total: dict) -> list:
    """One row per action id, the most decided first (:data:`OTHER` among them)."""
    rows, d = total["actions"], total["d"]
    return [{"id": k, "decisions": r[0], "share": _ratio(r[0], d), "rewards": r[1],
             "mean": _ratio(r[2], r[1])}
            for k, r in sorted(rows.items(), key=lambda kv: (-kv[1][0], kv[0]))]


# -- series --------------------------------------------------------------------------
def series_step(minutes: int) -> int:
    """Minutes per series point of a ``minutes``-long window.

    >>> series_step(360), series_step(1440), series_step(7 * 1440)
    (1, 5, 60)
    """
    for step in STEPS:
        if math.ceil(minutes / step) <= MAX_POINTS:
            return step
    return STEPS[-1]


def points(buckets: list, first_minute: int) -> list:
    """``[(first minute, merged buckets)]`` of the series: ``buckets`` (one per minute
    from ``first_minute``) in steps of :func:`series_step` minutes aligned on the
    clock (a multiple of the step), the first and last clipped to the window."""
    step, out, i = series_step(len(buckets)), [], 0
    while i < len(buckets):
        minute = first_minute + i
        end = min(len(buckets), i + step - minute % step)
        out.append((minute, merge(buckets[i:end])))
        i = end
    return out


def series(pts: list, step: int, version_ids, action_ids) -> dict:
    """The ``series`` of the report from :func:`points` (``step`` in minutes).
    ``action_ids`` are the report's action rows: an id not among them counts under
    :data:`OTHER`."""
    out = {"minute": [], "step": step * 60,
           "decisions": [], "rewards": [], "mean_reward": [], "low": [], "high": [],
           "join_rate": [], "exploration_share": [],
           "by_version": {str(v): {"mean_reward": [], "low": [], "high": []} for v in version_ids},
           "by_action": {a: {"share": []} for a in action_ids}}
    for minute, b in pts:
        mean, low, high = mean_interval(b["n"], b["s"], b["q"])
        for key, x in (("minute", minute * 60), ("decisions", b["d"]), ("rewards", b["n"]),
                       ("mean_reward", mean), ("low", low), ("high", high),
                       ("join_rate", _ratio(b["n"], b["d"])),
                       ("exploration_share", _ratio(b["x"], b["d"]))):
            out[key].append(x)
        for v in version_ids:
            _, n, s, q = b["versions"].get(v, (0, 0, 0.0, 0.0))
            row = out["by_version"][str(v)]
            for key, x in zip(("mean_reward", "low", "high"), mean_interval(n, s, q)):
                row[key].append(x)
        folded = sum(r[0] for k, r in b["actions"].items() if k not in action_ids)
        for a in action_ids:
            d = b["actions"].get(a, (0,))[0] + (folded if a == OTHER else 0)
            out["by_action"][a]["share"].append(_ratio(d, b["d"]))
    return out


# -- the report ----------------------------------------------------------------------
def report(loop: str, window_s: int, end_minute: int, buckets: list, state: dict,
           health: dict) -> dict:
    """The body of ``GET /v1/loops/<loop>/health``.

    ``buckets``: one parsed bucket (:func:`parse_bucket`) per minute of the previous
    window and this one, oldest first (2 · window minutes, the last ``end_minute``);
    ``state``: ``learner_lag``, ``staleness_s``, ``serving_version``, ``learning``,
    ``drift`` and ``missing`` (the loop's Redis keys found missing, see
    :func:`service.health_status.assess`); ``health``: the loop's ``health`` table.
    """
    minutes = window_s // 60
    prev_buckets, cur_buckets = buckets[:-minutes], buckets[-minutes:]
    first = end_minute - minutes + 1
    step = series_step(minutes)
    pts = points(cur_buckets, first)
    total = cap_actions(merge(b for _, b in pts), health["max_actions"])
    fig = figures(total)
    previous = figures(merge(prev_buckets))["reward"]
    vers, acts = versions(total), actions(total)
    reasons = assess(fig, previous, state, health)
    return {"loop": loop, "window": window_s, "status": level(reasons), "reasons": reasons,
            **{k: fig[k] for k in ("decisions", "rewards", "join_rate", "default_rate",
                                   "exploration_share", "min_propensity", "latency_ms",
                                   "reward")},
            "previous": previous, "versions": vers, "actions": acts,
            **{k: state[k] for k in ("learner_lag", "staleness_s", "serving_version",
                                     "learning", "drift")},
            "series": series(pts, step, [v["version"] for v in vers], [a["id"] for a in acts])}
