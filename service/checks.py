"""Pre-deployment checks: what a candidate model must pass before it serves a loop.

Pure: the caller hands in the snapshot bytes, the loop's configuration and the loop's
recent logged decisions (:meth:`service.store.LoopLog.recent_decisions` reads up to
:data:`MAX_DECISIONS` of them), and stores the :class:`CheckReport` (``to_dict()``,
JSON) with the model version. The checks, in this order:

``loads``    the snapshot loads with the loop's policy class (``Class.from_bytes``)
``pmf``      on every logged context (:func:`bandits.dsjson.decode`: the exact context
             and actions the serving policy saw) decide answers a pmf with no NaN/inf,
             no negative entry, summing to 1 within :data:`PMF_TOLERANCE`
``floor``    every probability is at least the loop's exploration floor
             (:func:`exploration_floor`)
``actions``  the decisions fit the loop's action set: over exactly the ids asked
             about, which for a loop with fixed actions are the loop's own ids (a
             decision over the whole fixed list is checked too)
``latency``  the p99 of decide over those contexts is at most the budget
             (:data:`LATENCY_BUDGET_MS` unless the caller passes another)

When the snapshot does not load, the other checks are not run (``passed`` is None).
With no logged decision, a loop with fixed actions is checked on the empty context
over its actions; a loop of per-request candidates has nothing to decide on and only
``loads`` is checked. :func:`first_failure` names the check that refuses a deploy.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import numpy as np

from bandits import BanditError, dsjson, resolve

from .config import LoopConfig

#: Logged decisions the checks decide on at most (the most recent ones).
MAX_DECISIONS = 1000
#: Default budget of the p99 decide latency, in milliseconds.
LATENCY_BUDGET_MS = 5.0
#: How far a pmf's sum may be from 1.
PMF_TOLERANCE = 1e-9
#: Relative slack of the floor comparison (ε/K computed in another order rounds apart).
FLOOR_SLACK = 1e-9
#: The order the checks run and are reported in.
CHECKS = ("loads", "pmf", "floor", "actions", "latency")
#: The exploration share ε each built-in policy type documents: every action of K gets
#: at least ε/K (docs/policies.md, "its propensities"). ``param(name)`` reads the
#: loop's policy spec, with the class's default when the spec leaves it out.
FLOOR_SHARE = {
    "epsilon_greedy": lambda param: param("min_epsilon") if param("decay") else param("epsilon"),
    "linucb": lambda param: param("epsilon"),
    "lints": lambda param: param("epsilon"),
    "qnetwork": lambda param: param("epsilon"),
    "vw": lambda param: param("floor"),
}


@dataclass(frozen=True)
class CheckResult:
    """One check: ``passed`` is True, False, or None when it was not run."""

    name: str
    passed: bool | None
    figures: dict = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "figures": dict(self.figures),
                "message": self.message}


@dataclass(frozen=True)
class CheckReport:
    """Every check's result, in :data:`CHECKS` order."""

    checks: tuple

    @property
    def passed(self) -> bool:
        """True when every check ran and passed."""
        return all(c.passed is True for c in self.checks)

    def first_failure(self) -> CheckResult | None:
        return first_failure(self.checks)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"passed": bool, "checks": [{name, passed, figures, message}]}``."""
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


def first_failure(checks) -> CheckResult | None:
    """The first check that failed (the one a refused deploy names), or None."""
    return next((c for c in checks if c.passed is False), None)


@dataclass
class _Probe:
    """One decide of the candidate: the ids it was asked about and what it answered."""

    event_id: str
    ids: tuple
    pmf: np.ndarray | None = None
    answered: tuple = ()
    error: str | None = None
    seconds: float = 0.0


def run_checks(snapshot: bytes, loop: LoopConfig, decisions: list,
               latency_budget_ms: float = LATENCY_BUDGET_MS) -> CheckReport:
    """Check a candidate ``snapshot`` for ``loop`` on its logged ``decisions`` (DSJSON
    dicts, oldest first; the last :data:`MAX_DECISIONS` are used)."""
    policy, loads = check_loads(snapshot, loop)
    if policy is None:
        skipped = tuple(CheckResult(name, None, {}, "not run: the snapshot does not load")
                        for name in CHECKS[1:])
        return CheckReport((loads,) + skipped)
    inputs, undecodable = logged_inputs(loop, decisions[-MAX_DECISIONS:])
    if inputs:  # warm-up, untimed: a serving worker's featurizer memos are warm
        _decide(policy, *inputs[0])
    probes = [_decide(policy, *item) for item in inputs]
    return CheckReport((loads, check_pmf(probes, undecodable), check_floor(probes, loop),
                        check_actions(probes, loop), check_latency(probes, latency_budget_ms)))


def check_loads(snapshot: bytes, loop: LoopConfig) -> tuple:
    """``(policy or None, result)``: the snapshot loaded by the loop's policy class, as
    a worker loads it; a snapshot of another class or a corrupt one fails."""
    type_name = loop.policy.get("type")
    try:
        cls = resolve(type_name)
        policy = cls.from_bytes(snapshot)
    except Exception as exc:  # a plugin's from_bytes may raise anything: it fails the check
        return None, CheckResult("loads", False, {"bytes": len(snapshot), "policy": type_name},
                                 f"the snapshot does not load as the loop's policy "
                                 f"{type_name!r}: {_describe(exc)}")
    return policy, CheckResult("loads", True, {"bytes": len(snapshot), "policy": type_name},
                               f"loads as {type_name!r}")


def logged_inputs(loop: LoopConfig, decisions: list) -> tuple:
    """``([(event id, context, actions)], undecodable)``: what each logged decision
    asked the serving policy; with fixed actions, also the whole fixed list."""
    inputs, undecodable = [], 0
    for n, event in enumerate(decisions):
        try:
            context, pairs = dsjson.decode(event)
            actions = [{"id": aid, "features": feats} for aid, feats in pairs]
        except (BanditError, KeyError, TypeError, AttributeError, ValueError, IndexError):
            undecodable += 1  # the log's fault, not the candidate's: counted, not failed
            continue
        event_id = event.get("EventId") if isinstance(event.get("EventId"), str) else f"#{n}"
        inputs.append((event_id, context, actions))
    if loop.actions:
        context = inputs[0][1] if inputs else {}
        inputs.append(("(the loop's fixed actions)", context, list(loop.actions)))
    return inputs, undecodable


def _decide(policy, event_id: str, context: dict, actions: list) -> _Probe:
    """Decide once, timed; an exception is recorded, not raised."""
    probe = _Probe(event_id, tuple(a["id"] for a in actions))
    start = time.perf_counter()
    try:
        decision = policy.decide(context, actions)
        probe.seconds = time.perf_counter() - start
        probe.pmf = np.asarray(decision.pmf, dtype=np.float64).reshape(-1)
        probe.answered = tuple(getattr(decision, "action_ids", ()))
    except Exception as exc:  # the candidate's failure on a logged context fails a check
        probe.error = _describe(exc)
    return probe


def check_pmf(probes: list, undecodable: int = 0) -> CheckResult:
    """Every decide answered a finite, non-negative pmf over its K actions summing to 1."""
    figures = {"decisions": len(probes), "undecodable": undecodable, "errors": 0,
               "invalid": 0, "max_sum_error": 0.0}
    first = None
    for probe in probes:
        problem = _pmf_problem(probe)
        if probe.pmf is not None and probe.pmf.size and np.isfinite(probe.pmf).all():
            figures["max_sum_error"] = max(figures["max_sum_error"], abs(float(probe.pmf.sum()) - 1.0))
        if problem:
            figures["errors" if probe.error else "invalid"] += 1
            first = first or f"event {probe.event_id}: {problem}"
    if first:
        return CheckResult("pmf", False, figures, first)
    return CheckResult("pmf", True, figures, f"{len(probes)} pmfs are valid")


def _pmf_problem(probe: _Probe) -> str | None:
    if probe.error:
        return f"decide raised {probe.error}"
    pmf, k = probe.pmf, len(probe.ids)
    if pmf.size != k:
        return f"the pmf has {pmf.size} entries for {k} actions"
    if not np.isfinite(pmf).all():
        return f"the pmf holds NaN or inf: {pmf.tolist()}"
    if (pmf < 0).any():
        return f"the pmf holds a negative probability: {pmf.tolist()}"
    total = float(pmf.sum())
    if abs(total - 1.0) > PMF_TOLERANCE:
        return f"the pmf sums to {total!r}, not 1 (±{PMF_TOLERANCE:g})"
    return None


def exploration_floor(loop: LoopConfig) -> float | None:
    """The loop's exploration share ε (every action of K gets at least ε/K), or None
    when its policy type documents none (a plugin): then every probability must be > 0.
    A share of 0 (``vw`` with ``floor = 0``) also means > 0: exploring policies give
    every action a positive probability, which off-policy evaluation divides by."""
    rule = FLOOR_SHARE.get(loop.policy.get("type"))
    if rule is None:
        return None
    params = inspect.signature(resolve(loop.policy["type"]).__init__).parameters
    share = float(rule(lambda name: loop.policy.get(name, params[name].default)))
    return share if share > 0 else None


def check_floor(probes: list, loop: LoopConfig) -> CheckResult:
    """Every probability is ≥ ε/K (the loop's floor), or > 0 where there is none."""
    share = exploration_floor(loop)
    rule = f"p >= {share:g}/K" if share else "p > 0"
    figures = {"rule": rule, "share": share, "decisions": 0, "below": 0, "min_probability": None}
    first = None
    for probe in _valid(probes):
        k = probe.pmf.size
        figures["decisions"] += 1
        low = float(probe.pmf.min())
        if figures["min_probability"] is None or low < figures["min_probability"]:
            figures["min_probability"] = low
        floor = share / k if share else 0.0
        bad = low < floor * (1 - FLOOR_SLACK) if share else low <= 0.0
        if bad:
            figures["below"] += 1
            first = first or (f"event {probe.event_id}: probability {low!r} over {k} actions "
                              f"breaks the loop's floor ({rule})")
    if first:
        return CheckResult("floor", False, figures, first)
    return CheckResult("floor", True, figures, f"every probability meets {rule}")


def check_actions(probes: list, loop: LoopConfig) -> CheckResult:
    """Each decision is over exactly the ids asked about, in their order; with fixed
    actions those ids are the loop's (a log of other ids does not fit the loop)."""
    fixed = [a["id"] for a in loop.actions] if loop.actions else None
    figures = {"fixed": fixed is not None, "decisions": 0, "mismatched": 0}
    first = None
    for probe in _valid(probes):
        figures["decisions"] += 1
        problem = _actions_problem(probe, fixed)
        if problem:
            figures["mismatched"] += 1
            first = first or f"event {probe.event_id}: {problem}"
    if first:
        return CheckResult("actions", False, figures, first)
    what = f"the loop's {len(fixed)} fixed actions" if fixed else "the logged candidates"
    return CheckResult("actions", True, figures, f"every decision is over {what}")


def _actions_problem(probe: _Probe, fixed: list | None) -> str | None:
    if fixed is not None:
        foreign = [aid for aid in probe.ids if aid not in fixed]
        if foreign:
            return f"decided over {foreign[:5]}, not actions of the loop ({fixed[:10]})"
    if probe.answered and probe.answered != probe.ids:
        return f"the decision is over {list(probe.answered)[:10]}, asked {list(probe.ids)[:10]}"
    return None


def check_latency(probes: list, budget_ms: float) -> CheckResult:
    """The p99 of the decide times is at most ``budget_ms``."""
    times = [p.seconds * 1000.0 for p in probes if p.error is None]
    if not times:
        return CheckResult("latency", True, {"decisions": 0, "budget_ms": budget_ms},
                           "no decision to time")
    p99 = float(np.percentile(times, 99))
    figures = {"decisions": len(times), "p99_ms": p99, "max_ms": max(times), "budget_ms": budget_ms}
    if p99 > budget_ms:
        return CheckResult("latency", False, figures,
                           f"decide p99 {p99:.3f} ms is over the budget of {budget_ms:g} ms")
    return CheckResult("latency", True, figures,
                       f"decide p99 {p99:.3f} ms is within {budget_ms:g} ms")


def _valid(probes: list):
    """The probes whose pmf the pmf check accepts (the others fail that check)."""
    return (p for p in probes if _pmf_problem(p) is None)


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["CHECKS", "CheckReport", "CheckResult", "LATENCY_BUDGET_MS", "MAX_DECISIONS",
           "exploration_floor", "first_failure", "run_checks"]
