"""A loop's health thresholds and drift detection settings, validated.

.. code-block:: toml

    [loops.recs.health]
    retention = "7d"          # how long the per-minute buckets are kept
    [loops.recs.drift]
    on_reward_drift = "alert" # or "explore", "reset"

``health`` drives ``GET /v1/loops/<loop>/health`` (:mod:`service.health`); ``drift`` the
detectors the learner runs (:mod:`service.drift`). Errors name the key
(``loops.recs.drift.on_reward_drift``).
"""
from __future__ import annotations

from .errors import ConfigError

HEALTH_DEFAULTS = {
    "retention": 7 * 86400.0,   # seconds the per-minute buckets are kept (bounded memory)
    "min_join_rate": 0.5,       # joined rewards / decisions under this over the window: alert
    "max_learner_lag": 10_000,  # joined events not yet learned over this: warn
    "max_staleness": 3600.0,    # seconds without a new version while learning: warn
    "max_actions": 100,         # action ids one bucket counts apart; the rest under "_other"
}
DRIFT_DEFAULTS = {
    "on_reward_drift": "alert",  # "alert" | "explore" | "reset"
    "detector": "adwin",         # the reward detector: "adwin" | "page_hinkley"
    "delta": 0.005,              # ADWIN's confidence: no false alarm in 300k stationary events of a
                                 # learning loop (the streams of scripts/drift.py); ~15 % sooner than 0.002
    "ph_threshold": 100.0,       # Page-Hinkley's threshold (in reward units summed over events)
    "psi_threshold": 0.2,        # population stability index above which a namespace drifted
    "window": 5000,              # events per context/action drift window (recent vs reference)
    "explore_epsilon": 0.2,      # the exploration floor while correcting by "explore"
    "explore_for": 10_000,       # decisions the raised floor lasts
}
CORRECTIONS = ("alert", "explore", "reset")
#: The reward detectors (:class:`service.drift.RewardDetector`).
DETECTORS = ("adwin", "page_hinkley")


def parse_health(spec, key: str, duration, integer) -> dict:
    """The ``health`` table with defaults filled in."""
    s = merged(spec, HEALTH_DEFAULTS, key)
    retention = duration(s["retention"], key + ".retention")
    if retention < 60:
        raise ConfigError(key + ".retention", "must be at least 1 minute (one bucket), "
                                              f"got {s['retention']!r}")
    return {"retention": retention,
            "min_join_rate": number(s["min_join_rate"], key + ".min_join_rate", 0.0, 1.0),
            "max_learner_lag": integer(s["max_learner_lag"], key + ".max_learner_lag", 1),
            "max_staleness": duration(s["max_staleness"], key + ".max_staleness"),
            "max_actions": integer(s["max_actions"], key + ".max_actions", 1)}


def parse_drift(spec, key: str, duration, integer) -> dict:
    """The ``drift`` table with defaults filled in."""
    s = merged(spec, DRIFT_DEFAULTS, key)
    if s["on_reward_drift"] not in CORRECTIONS:
        raise ConfigError(key + ".on_reward_drift", f"must be one of {', '.join(CORRECTIONS)}, "
                                                    f"got {s['on_reward_drift']!r}")
    if s["detector"] not in DETECTORS:
        raise ConfigError(key + ".detector", f"must be one of {', '.join(DETECTORS)}, "
                                             f"got {s['detector']!r}")
    return {"on_reward_drift": s["on_reward_drift"], "detector": s["detector"],
            "delta": number(s["delta"], key + ".delta", 0.0, 1.0, low_open=True),
            "ph_threshold": number(s["ph_threshold"], key + ".ph_threshold", 0.0, None,
                                   low_open=True),
            "psi_threshold": number(s["psi_threshold"], key + ".psi_threshold", 0.0, None,
                                    low_open=True),
            "window": integer(s["window"], key + ".window", 100),
            "explore_epsilon": number(s["explore_epsilon"], key + ".explore_epsilon", 0.0, 1.0,
                                      low_open=True),
            "explore_for": integer(s["explore_for"], key + ".explore_for", 1)}


def merged(spec, defaults: dict, key: str) -> dict:
    """``spec`` (a table or None) over ``defaults``; an unknown key names itself."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ConfigError(key, "must be a table")
    for field in spec:
        if field not in defaults:
            raise ConfigError(f"{key}.{field}", "unknown key", list(defaults))
    return {**defaults, **spec}


def number(value, key: str, low, high, low_open: bool = False) -> float:
    """A float in [low, high] (``low_open``: > low; ``high`` None: unbounded)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = f"{'>' if low_open else '>='} {low:g}" if low is not None else ""
        hi = f"<= {high:g}" if high is not None else ""
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise ConfigError(key, f"must be a number {bounds}, got {value!r}")
    return float(value)
