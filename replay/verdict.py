"""The one-line verdict of an evaluation, with the user's next step.

Pure: :func:`conclude` reads the rows of :func:`replay.evaluate` (dicts with
``policy``, ``estimator``, ``value``, ``low``, ``high``, ``ess``, ``n``) and, when
given, each candidate's overlap figures (``min_propensity``: the smallest logged
probability of the actions the candidate picks; ``actions``: K). No I/O.

Rules, in order:

1. **Deciding row.** A policy is judged by the first of :data:`PREFERENCE` (dr, sndr,
   snips, ips, then dm, whose interval ignores the reward model's bias) that it and
   the logging policy both have; a ``replay`` candidate by its replay row, against
   the logging policy's deciding row.
2. **Too few rounds.** The logging policy's deciding row has ESS = n under
   :data:`~replay.estimators.MIN_ESS` (30): no estimate has an interval; collect the
   missing rounds.
3. **Each candidate** is then one of:

   - *overlap too small*: its deciding row has ESS (replay: accepted rounds) under 30,
     so no interval. ESS grows in proportion to the rounds, so about n·30/ESS
     rounds (30/μ_min without any match) would do. A logger whose every action has
     probability ≥ 30/n gives a deterministic candidate about 30 matches in n
     rounds; for ε-greedy over K actions (floor ε/K) that is ε ≥ K·30/n;
   - *beats* / *worse*: its interval lies wholly above / below the logger's. The
     difference d = v − v_log is shown with d ± √(h² + h_log²), h the half-widths,
     the two estimates taken as independent;
   - *no conclusion*: the intervals overlap. Half-widths shrink as 1/√n, so the
     intervals separate, if d holds, after n·((h + h_log)/|d|)² evaluated rounds;
   - *undefined*: an interval of zero width on ESS ≥ 30 (every term equal).
4. **One line.** The verdict reports the candidate ranked first by outcome (beats,
   no conclusion, overlap too small, undefined, worse), ties broken by the larger
   lower bound of d, the fewer rounds needed, or the larger d.

Round counts are of rewarded rounds in the whole log: evaluated rounds times
``scale`` (log rounds per evaluated round, above 1 when candidates train on an
earlier slice), rounded up.

Examples
--------
>>> rows = [dict(policy="logging", estimator="dr", value=0.50, low=0.48, high=0.52,
...              ess=1000.0, n=1000),
...         dict(policy="new", estimator="dr", value=0.60, low=0.57, high=0.63,
...              ess=400.0, n=1000)]
>>> print(conclude(rows).text)  # d = 0.1 ± √(0.03² + 0.02²)
verdict: candidate new beats the logging policy by +0.1000 [0.0639, 0.1361] (DR);
next: deploy it and check that its live reward lands in its interval
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .estimators import MIN_ESS

#: The logging policy's rows are reported under this name.
LOGGING = "logging"
#: Estimators a verdict is based on, most trusted first.
PREFERENCE = ("dr", "sndr", "snips", "ips", "dm")
#: Outcomes in the order the one-line verdict prefers them.
OUTCOMES = ("beats", "no conclusion", "overlap too small", "undefined", "worse")


@dataclass(frozen=True)
class Verdict:
    """An outcome with the line that states it. ``rounds``: the rewarded rounds the
    advice names (more to collect for ``too few rounds`` and ``no conclusion``, in all
    for ``overlap too small``); ``epsilon``: the exploration advised, if any."""

    kind: str
    text: str
    policy: str | None = None
    estimator: str | None = None
    difference: float = math.nan
    low: float = math.nan
    high: float = math.nan
    rounds: int | None = None
    epsilon: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def conclude(rows: list, overlap: dict | None = None, scale: float = 1.0,
             preference: tuple = PREFERENCE) -> Verdict:
    """The verdict on ``rows`` (see the module docstring for the rules); ``preference``
    names the estimators a verdict may rest on, most trusted first."""
    by = {(r["policy"], r["estimator"]): r for r in rows}
    base = _deciding(by, LOGGING, preference)
    if base is None:
        return Verdict("no estimate", "verdict: no estimate of the logging policy; next: "
                                      "evaluate with at least one of " + ", ".join(preference))
    if base["ess"] < MIN_ESS:
        more = math.ceil((MIN_ESS - base["n"]) * scale)
        return Verdict("too few rounds", f"verdict: too few rounds: {base['n']} evaluated, "
                       f"under {MIN_ESS}; next: collect ≥ {more:,} more rewarded rounds",
                       LOGGING, base["estimator"], rounds=more)
    candidates = list(dict.fromkeys(r["policy"] for r in rows if r["policy"] != LOGGING))
    if not candidates:
        return Verdict("logging only", f"verdict: the logging policy's value is "
                       f"{_span(base['value'], base['low'], base['high'])} "
                       f"({base['estimator'].upper()}); next: evaluate a candidate against it",
                       LOGGING, base["estimator"], base["value"], base["low"], base["high"])
    overlap = overlap or {}
    judged = [_judge(by, name, base, overlap.get(name), scale, preference) for name in candidates]
    return min(judged, key=_rank)


def _deciding(by, policy, order):
    return next((by[policy, e] for e in order if (policy, e) in by), None)


def _judge(by, name, base, overlap, scale, preference) -> Verdict:
    """One candidate's outcome against the logging policy's deciding row ``base``."""
    shared = [e for e in preference if (LOGGING, e) in by]
    row = _deciding(by, name, ("replay",) + tuple(shared))
    if row is None:
        return Verdict("undefined", f"verdict: no conclusion: candidate {name} has no estimator "
                       "the logging policy has; next: evaluate both with the same estimators",
                       name)
    if row["estimator"] != "replay":
        base = by[LOGGING, row["estimator"]]
    if row["ess"] < MIN_ESS:
        return _overlap_too_small(row, overlap or {}, scale)
    if not math.isfinite(row["low"]) or not math.isfinite(base["low"]):
        who = f"candidate {name}" if math.isfinite(base["low"]) else "the logging policy"
        return Verdict("undefined", f"verdict: no conclusion: {who} has a zero-width "
                       f"{_tag(row)} interval (every term equal); next: check that the log's "
                       "rewards vary (a log of default rewards does not)", name, row["estimator"])
    return _compare(row, base, scale)


def _compare(row, base, scale) -> Verdict:
    """beats / worse when the intervals are disjoint, else no conclusion with a rounds estimate."""
    name, est = row["policy"], _tag(row)
    d = row["value"] - base["value"]
    h, h_log = (row["high"] - row["low"]) / 2.0, (base["high"] - base["low"]) / 2.0
    spread = math.hypot(h, h_log)
    fields = dict(policy=name, estimator=row["estimator"], difference=d, low=d - spread,
                  high=d + spread)
    by_how_much = f"by {_span(d, d - spread, d + spread, signed=True)} ({est})"
    if row["low"] > base["high"]:
        return Verdict("beats", f"verdict: candidate {name} beats the logging policy {by_how_much}; "
                       "next: deploy it and check that its live reward lands in its interval",
                       **fields)
    if row["high"] < base["low"]:
        return Verdict("worse", f"verdict: candidate {name} is worse than the logging policy "
                       f"{by_how_much}; next: keep the logging policy", **fields)
    if d == 0.0:
        return Verdict("no conclusion", f"verdict: no conclusion: candidate {name} and the "
                       f"logging policy are estimated equal ({est}); next: none needed, more "
                       "rounds would not separate equal estimates", **fields)
    needed = row["n"] * ((h + h_log) / abs(d)) ** 2
    more = max(1, math.ceil((needed - row["n"]) * scale))
    return Verdict("no conclusion", f"verdict: no conclusion: candidate {name} differs from the "
                   f"logging policy by {d:+.4f} and the intervals overlap ({est}); next: collect "
                   f"~{more:,} more rewarded rounds", rounds=more, **fields)


def _overlap_too_small(row, overlap, scale) -> Verdict:
    """Advice from the data: rounds for ESS 30, and the exploration that gives it at n."""
    n, ess, floor = row["n"], row["ess"], overlap.get("min_propensity")
    rounds = (n * MIN_ESS / ess if ess > 0 else
              MIN_ESS / floor if floor else None)
    rounds = None if rounds is None else math.ceil(rounds * scale)
    k = overlap.get("actions")
    eps = _ceil2(k * MIN_ESS / n) if k else None
    seen = (f"{int(ess)} accepted round{'' if ess == 1 else 's'}" if row["estimator"] == "replay"
            else f"ESS {ess:.1f}") + f", under {MIN_ESS}"
    seen += "" if floor is None else f"; logged propensity as low as {floor:.3g}"
    advice = [f"log with ε ≥ {eps:g}"] if eps is not None and eps <= 1.0 else []
    advice += [f"evaluate on ~{rounds:,} rewarded rounds"] if rounds is not None else []
    return Verdict("overlap too small", f"verdict: overlap too small: candidate {row['policy']} "
                   f"takes actions the log rarely explored ({_tag(row)}: {seen}); "
                   f"next: {' or '.join(advice) or 'log with more exploration'}",
                   row["policy"], row["estimator"], rounds=rounds,
                   epsilon=eps if eps is not None and eps <= 1.0 else None)


def _rank(v: Verdict) -> tuple:
    order = OUTCOMES.index(v.kind)
    if v.kind == "beats":
        return order, -v.low
    if v.kind == "worse":
        return order, -v.difference
    return order, math.inf if v.rounds is None else v.rounds


def _tag(row) -> str:
    return row["estimator"].upper()


def _span(value, low, high, signed=False) -> str:
    return f"{value:+.4f} [{low:.4f}, {high:.4f}]" if signed else f"{value:.4f} [{low:.4f}, {high:.4f}]"


def _ceil2(x: float) -> float:
    """``x`` rounded up to two significant digits (0.2501 → 0.26, 0.25 → 0.25).

    >>> _ceil2(0.2501), _ceil2(0.25), _ceil2(1.25)
    (0.26, 0.25, 1.3)
    """
    if x <= 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(x)) - 1)
    return round(math.ceil(round(x / step, 9)) * step, 12)
