"""What ``cbserve models`` prints: the model routes' JSON answers as tables and summaries.

Pure: an answer (the parsed JSON of :mod:`service.api.versions` and the challenger
routes) in, text out; :mod:`service.models_cli` does the I/O. Times are UTC, a missing
value is ``-``, and an entry's live ``figures`` (decisions, rewards, mean reward and its
interval) are shown when the service gives them.

>>> print(table(["VERSION", "STATUS"], [[1, ""], [12, "serving"]]))
VERSION  STATUS
1
12       serving
"""
from __future__ import annotations

import datetime as dt
import json


def when(seconds) -> str:
    """A UNIX time as ``2026-11-26 02:09:26`` (UTC); ``-`` for none."""
    if not isinstance(seconds, (int, float)):
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def table(headers: list, rows: list) -> str:
    """Left-aligned columns, two spaces apart; no trailing spaces."""
    cells = [headers] + [[shown(c) if not isinstance(c, str) else c for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def estimate(value, low=None, high=None) -> str:
    """``0.412 [0.390, 0.433]``: a value and its interval, when known.

    >>> estimate(0.41254, 0.39, 0.4331), estimate(0.5), estimate(None)
    ('0.4125 [0.3900, 0.4331]', '0.5000', '-')
    """
    if not isinstance(value, (int, float)):
        return "-"
    bounds = f" [{low:.4f}, {high:.4f}]" if low is not None and high is not None else ""
    return f"{value:.4f}{bounds}"


def reward(figures: dict) -> str:
    """An entry's mean reward and its interval (its ``figures``)."""
    return estimate(figures.get("mean_reward"), figures.get("low"), figures.get("high"))


def marker(entry: dict, learning: bool) -> str:
    if entry.get("serving"):
        return "serving" + ("" if learning else " (pinned)")
    return "" if entry.get("served", True) else "never served"


def format_list(answer: dict, loop: str) -> str:
    """``GET /models``: the serving pointer, then a row per version."""
    learning = answer.get("learning", True)
    head = (f"loop {loop}: serving version {answer.get('serving') or 'none'}, "
            + ("learning" if learning else "pinned (learning nothing)"))
    models = answer.get("models", [])
    if not models:
        return head + "\nno model version yet"
    figured = any(isinstance(m.get("figures"), dict) for m in models)
    headers = ["VERSION", "SOURCE", "CREATED (UTC)", "PARENT", "EVENTS LEARNED"]
    headers += ["DECISIONS", "MEAN REWARD"] if figured else []
    rows = []
    for m in models:
        row = [m.get("version"), m.get("source"), when(m.get("created")), m.get("parent"),
               m.get("events_learned")]
        if figured:
            f = m.get("figures") if isinstance(m.get("figures"), dict) else {}
            row += [f.get("decisions"), reward(f)]
        rows.append(row + [marker(m, learning)])
    return head + "\n" + table(headers + ["STATUS"], rows)


def format_fields(fields: dict, indent: str = "") -> str:
    """``name: value`` lines, nested tables indented under their name, an estimate
    (``value``, ``low``, ``high``) on one line.

    >>> print(format_fields({"n": 40, "dr": {"value": 0.9, "low": None, "high": None},
    ...                      "champion": {"value": 0.5, "low": 0.3, "high": 0.7, "n": 40}}))
    n: 40
    dr: 0.9000
    champion: 0.5000 [0.3000, 0.7000] (n 40)
    """
    lines = []
    for k, v in fields.items():
        if isinstance(v, dict) and "value" in v:
            rest = ", ".join(f"{x} {shown(y)}" for x, y in v.items() if x not in ("value", "low", "high"))
            lines.append(f"{indent}{k}: {estimate(v['value'], v.get('low'), v.get('high'))}"
                         + (f" ({rest})" if rest else ""))
        elif isinstance(v, dict) and v:
            lines += [f"{indent}{k}:", format_fields(v, indent + "  ")]
        else:
            lines.append(f"{indent}{k}: {shown(v)}")
    return "\n".join(lines)


def format_entry(entry: dict) -> str:
    """``GET /models/<v>`` (and an upload's answer): one field a line."""
    e = dict(entry)
    e["created"] = when(e.get("created")) + " UTC"
    policy = e.pop("policy", None) or {}
    checks = e.pop("checks", None)
    figures = e.pop("figures", None)
    lines = [format_fields(e)]
    if policy:
        lines.append(f"policy: {policy.get('name')} {shown(policy.get('params', {}))}")
    if isinstance(checks, dict):
        failed = [c.get("name") for c in checks.get("checks", []) if c.get("passed") is False]
        lines.append("checks: " + ("passed" if checks.get("passed") else f"failed: {', '.join(failed)}"))
    if isinstance(figures, dict):
        lines.append("figures:\n" + format_fields(figures, "  "))
    return "\n".join(lines)


def format_deploy(answer: dict, loop: str) -> str:
    """``POST /deploy`` or ``/promote``: what serves now, and what it replaced."""
    serving = answer.get("serving", answer.get("version"))
    name = answer.get("challenger")
    of = f" (challenger {name}{', forced past the gate' if answer.get('forced') else ''})" if name else ""
    text = f"loop {loop} serves version {serving}{of}, was {shown(answer.get('previous'))}"
    if "learning" in answer:
        text += ("; the learner continues from it" if answer["learning"] else
                 "; pinned: it learns nothing until a deploy without --pin")
    return text


def format_upload(entry: dict, path: str, loop: str) -> str:
    """``POST /models``: the new version's entry and how it may serve."""
    v = entry.get("version")
    checks = entry.get("checks") if isinstance(entry.get("checks"), dict) else {}
    then = (f"it serves once deployed: cbserve models deploy {v} --force --loop {loop}"
            if checks.get("passed") is not False else "a check failed: it cannot be deployed")
    return f"uploaded {path} as version {v} of loop {loop}\n{format_entry(entry)}\n{then}"


def _of(figures: dict, name: str) -> str:
    e = figures.get(name)
    return estimate(e.get("value"), e.get("low"), e.get("high")) if isinstance(e, dict) else "-"


def format_challengers(answer: dict, loop: str) -> str:
    """``GET /challengers``: the gate, then a row per challenger with its live figures
    (events, ESS, SNIPS and DR with their intervals, the champion's value on the same
    events, the verdict), then what keeps each from passing the gate."""
    items = answer.get("challengers") or []
    rule = answer.get("promotion") if isinstance(answer.get("promotion"), dict) else {}
    head = f"loop {loop}: serving version {shown(answer.get('serving'))}"
    if rule:
        head += (f"; promotion {rule.get('mode', 'manual')}: {rule.get('estimator')} lower bound "
                 f">= champion + {shown(rule.get('margin'))}, at least {shown(rule.get('min_events'))} "
                 f"events and an ESS of {shown(rule.get('min_ess'))}")
    if not items:
        return head + "\nno challengers"
    rows, notes = [], []
    for c in items:
        f = c.get("figures") if isinstance(c.get("figures"), dict) else {}
        gate = c.get("gate") if isinstance(c.get("gate"), dict) else {}
        rows.append([c.get("name"), f.get("n"), f.get("ess"), _of(f, "snips"), _of(f, "dr"),
                     _of(f, "champion"), c.get("verdict", "-")])
        if gate.get("reasons"):
            notes.append(f"{c.get('name')}: the gate refuses: {'; '.join(gate['reasons'])}")
    table_ = table(["CHALLENGER", "EVENTS", "ESS", "SNIPS", "DR", "CHAMPION", "VERDICT"], rows)
    return "\n".join([head, table_] + notes)


def format_audit(answer: dict) -> str:
    """``GET /audit``: newest first."""
    entries = answer.get("entries", [])
    if not entries:
        return "no audit entries"
    rows = [[when(e.get("time")), e.get("action"), e.get("key"), e.get("version"), e.get("from"),
             e.get("learn"), e.get("force"), e.get("reason") or ""] for e in entries]
    return table(["TIME (UTC)", "ACTION", "KEY", "VERSION", "FROM", "LEARN", "FORCE", "REASON"], rows)
