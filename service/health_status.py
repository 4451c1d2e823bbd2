"""The status rules of a loop's health: each reason has a stable ``code`` and a level.

Pure. Thresholds come from the loop's ``health`` table
(:data:`service.monitoring_config.HEALTH_DEFAULTS`); drift states from the loop's
drift hash as the detectors write it. The status is the most severe level of the
reasons found, ``ok`` without any.
"""
from __future__ import annotations

#: The status levels, in order of severity (``cbserve_health_status`` exports the index).
LEVELS = ("ok", "warn", "alert")
#: Decisions a window needs before its join rate can raise an alert.
MIN_DECISIONS = 100

#: Every reason a report can give: code -> level. Alert rules and dashboards match these.
REASONS = {
    "join_rate_low": "alert",       # joined rewards / decisions under health.min_join_rate
    "reward_drift": "alert",        # drift.reward.state == "drift"
    "data_missing": "alert",        # the loop's decision log or counters are gone from Redis
    "learner_lag": "warn",          # joined events not yet learned over health.max_learner_lag
    "model_stale": "warn",          # no publication for health.max_staleness while learning
    "context_drift": "warn",        # drift.context flags a drifted namespace
    "actions_drift": "warn",        # drift.actions flags drift of the chosen actions
    "reward_drop": "warn",          # the reward's upper bound under the previous window's lower
}


def level(reasons: list) -> str:
    """The status of a report: its most severe reason's level.

    >>> level([]), level([{"level": "warn"}, {"level": "alert"}])
    ('ok', 'alert')
    """
    return max((r["level"] for r in reasons), key=LEVELS.index, default="ok")


def drifted(entry) -> list:
    """The namespaces a context or action drift detector reports as drifted.

    A detector's JSON object flags drift with ``drifted`` (true, or a list of names)
    or ``state == "drift"``, per namespace under ``namespaces.<name>`` the same way;
    drift flagged with no namespace named gives ``["*"]``.

    >>> drifted({"drifted": True, "namespaces": {"u": {"psi": 0.4, "drifted": True},
    ...                                          "d": {"psi": 0.0, "drifted": False}}})
    ['u']
    >>> drifted({"psi": 0.3, "drifted": True}), drifted({"drifted": ["user"]})
    (['*'], ['user'])
    >>> drifted({"drifted": False}), drifted({}), drifted(None)
    ([], [], [])
    """
    if not isinstance(entry, dict):
        return []
    spaces = entry.get("namespaces")
    if isinstance(spaces, dict):
        found = sorted(str(k) for k, v in spaces.items() if _flagged(v))
        if found:
            return found
    names = entry.get("drifted")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    return ["*"] if _flagged(entry) else []


def _flagged(entry) -> bool:
    return isinstance(entry, dict) and (entry.get("drifted") is True or entry.get("state") == "drift")


def _reason(code: str, message: str) -> dict:
    return {"level": REASONS[code], "code": code, "message": message}


def assess(fig: dict, previous: dict, state: dict, health: dict) -> list:
    """The reasons the figures of a window give, alerts first.

    ``fig``: :func:`service.health.figures` of the window; ``previous``: the previous
    window's reward interval; ``state``: ``learner_lag``, ``staleness_s``,
    ``learning``, ``drift``, ``missing`` (names of the loop's keys that should exist
    and do not).

    >>> health = {"min_join_rate": 0.5, "max_learner_lag": 10, "max_staleness": 60.0}
    >>> fig = {"decisions": 200, "join_rate": 0.25, "reward": {"high": 0.1}}
    >>> state = {"learner_lag": 11, "staleness_s": 5.0, "learning": True, "drift": {},
    ...          "missing": []}
    >>> [r["code"] for r in assess(fig, {"low": 0.2}, state, health)]
    ['join_rate_low', 'learner_lag', 'reward_drop']
    """
    out = []
    d, rate = fig["decisions"], fig["join_rate"]
    if d >= MIN_DECISIONS and rate is not None and rate < health["min_join_rate"]:
        out.append(_reason("join_rate_low", f"join rate {rate:.3f} over {d} decisions is under "
                                            f"health.min_join_rate = {health['min_join_rate']:g}"))
    drift = state["drift"]
    reward = drift.get("reward")
    if isinstance(reward, dict) and reward.get("state") == "drift":
        out.append(_reason("reward_drift", "the reward drift detector reports drift"))
    if state["missing"]:
        out.append(_reason("data_missing", "the loop has served but Redis has no "
                                           f"{' and no '.join(state['missing'])} (flushed, "
                                           "evicted, or restarted without persistence)"))
    lag = state["learner_lag"]
    if lag > health["max_learner_lag"]:
        out.append(_reason("learner_lag", f"{lag} joined events not yet learned (over "
                                          f"health.max_learner_lag = {health['max_learner_lag']})"))
    stale = state["staleness_s"]
    if state["learning"] and stale is not None and stale > health["max_staleness"]:
        out.append(_reason("model_stale", f"no model published for {stale:.0f} s while learning "
                                          f"(over health.max_staleness = {health['max_staleness']:g} s)"))
    for kind in ("context", "actions"):
        names = drifted(drift.get(kind))
        if names:
            where = "" if names == ["*"] else f" in {', '.join(names)}"
            out.append(_reason(f"{kind}_drift", f"the {kind} drift detector reports drift{where}"))
    high, low = fig["reward"].get("high"), previous.get("low")
    if high is not None and low is not None and high < low:
        out.append(_reason("reward_drop", f"the mean reward's upper bound {high:.4g} is under the "
                                          f"previous window's lower bound {low:.4g}"))
    return out
