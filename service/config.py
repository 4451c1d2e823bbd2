"""The service's TOML configuration: loops and service-wide settings, validated at start-up.

Every value has a default (:data:`SERVICE_DEFAULTS`, :data:`LOOP_DEFAULTS`); a bad file
raises :class:`ConfigError` naming the key (``loops.recs.reward_wait``) and the problem.
Durations are seconds or strings such as ``"250ms"``, ``"30s"``, ``"10m"``, ``"2h"``,
``"7d"``. Secrets (the Redis URL) come only from the environment: a ``redis_url`` key in
the file is refused.
"""
from __future__ import annotations

import inspect
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bandits import ConfigError as PolicyConfigError
from bandits import FeatureError
from bandits import make_featurizer, make_policy, resolve
from bandits.inputs import check_value, describe, normalize_actions

from .errors import ConfigError
from .lifecycle_config import (EVALUATION_DEFAULTS, PROMOTION_DEFAULTS, parse_challengers,
                               parse_evaluation, parse_promotion)
from .monitoring_config import DRIFT_DEFAULTS, HEALTH_DEFAULTS, parse_drift, parse_health
from .slots import describe_slots, parse_slots

SERVICE_DEFAULTS = {
    "publish_events": 100,       # a new model version after this many learned events...
    "publish_seconds": 5.0,      # ...or this long after the first unpublished one
    "learner_lock": 10.0,        # seconds a dead learner blocks its successor
    "max_actions": 1000,         # candidates per rank request
    "max_body_bytes": 1_000_000,   # request body (more: 413)
    "max_features": 1000,        # entries per namespace, object or list (more: 422)
    "max_string_length": 1024,   # characters of an id, a feature name or value
    "max_depth": 8,              # nesting of the rank body (a valid one needs 6)
    "read_timeout": 10.0,        # seconds a request body may take to arrive (more: 408)
    "allow_anonymous": False,    # serve with no API key configured (see service.api.auth)
    "data_dir": ".cbserve",      # `cbserve serve` only: the embedded Redis's files
    "durability": "primary",     # "replicated": a rank or reward answers once a replica has it
}
#: The values of ``service.durability``: what a rank's log write or a reward's join is
#: on before the answer (``replicated``: ``WAIT 1`` after it, 503 when no replica
#: acknowledged in time; see :data:`service.store.client.REPLICA_WAIT_MS`).
DURABILITY = ("primary", "replicated")
MODELS_DEFAULTS = {
    "keep": 50,                  # model versions kept per loop (oldest non-serving dropped first)
    "check_latency": "5ms",      # the p99 of a candidate's decide the pre-deployment checks allow
}
LOOP_DEFAULTS = {
    "policy": {"type": "linucb"},
    "featurizer": {},
    "actions": None,             # fixed actions (UI treatments); None: per request
    "slots": None,               # the places of a multi-slot decision (service.slots)
    "reward_wait": 600.0,        # seconds a reward is accepted after the decision
    "default_reward": 0.0,       # joined when no reward came within reward_wait
    "seed": 0,
    "retention": 7 * 86400.0,    # seconds the decision log keeps events
    "session": None,             # a table makes the loop sequential (SESSION_DEFAULTS)
    "challengers": None,         # policies learning beside the champion (service.lifecycle_config)
    "evaluation": None,          # their evaluation window (EVALUATION_DEFAULTS)
    "promotion": None,           # the gate a challenger passes to serve (PROMOTION_DEFAULTS)
    "health": None,              # health thresholds, bucket retention (HEALTH_DEFAULTS)
    "drift": None,               # drift detection and correction (DRIFT_DEFAULTS)
}
SESSION_DEFAULTS = {
    "ttl": 1800.0,               # seconds of inactivity after which a session is forgotten
    "history": 10,               # past steps (action, reward) kept as the session's state
}
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_LOOP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_SECRETS = ("redis_url", "password", "api_key")


@dataclass(frozen=True)
class LoopConfig:
    """One decision loop. ``actions`` is the fixed action list or ``None``."""

    name: str
    policy: dict
    featurizer: dict
    actions: list | None
    reward_wait: float
    default_reward: float
    seed: int
    retention: float
    session: dict | None = None
    challengers: tuple = ()
    evaluation: dict = field(default_factory=lambda: dict(EVALUATION_DEFAULTS))
    promotion: dict = field(default_factory=lambda: dict(PROMOTION_DEFAULTS))
    health: dict = field(default_factory=lambda: dict(HEALTH_DEFAULTS))
    drift: dict = field(default_factory=lambda: dict(DRIFT_DEFAULTS))
    slots: tuple = ()

    @property
    def sequential(self) -> bool:
        """True when decisions are keyed by a ``session_id`` (a ``session`` table)."""
        return self.session is not None

    def new_policy(self):
        """A fresh (unlearned) policy built from this loop's specification."""
        return make_policy(self.policy, self.featurizer)

    def challenger(self, name: str):
        """The challenger called ``name``, or None."""
        return next((c for c in self.challengers if c.name == name), None)

    def summary(self) -> dict:
        """JSON-ready view for ``GET /v1/loops``."""
        return {"name": self.name, "policy": self.policy, "featurizer": self.featurizer,
                "actions": [a["id"] for a in self.actions] if self.actions else None,
                "reward_wait": self.reward_wait, "default_reward": self.default_reward,
                "seed": self.seed, "retention": self.retention, "session": self.session,
                "challengers": [{"name": c.name, "policy": c.policy, "featurizer": c.featurizer}
                                for c in self.challengers],
                "evaluation": self.evaluation, "promotion": self.promotion,
                "health": self.health, "drift": self.drift, "slots": describe_slots(self.slots)}


@dataclass(frozen=True)
class Limits:
    """The size limits of a rank body (:mod:`service.api.limits` checks them), under the
    keys of ``[service]`` that set them."""

    max_body_bytes: int = SERVICE_DEFAULTS["max_body_bytes"]
    max_actions: int = SERVICE_DEFAULTS["max_actions"]
    max_features: int = SERVICE_DEFAULTS["max_features"]  # entries of any object or list but `actions`
    max_string_length: int = SERVICE_DEFAULTS["max_string_length"]
    max_depth: int = SERVICE_DEFAULTS["max_depth"]  # the body is depth 1; a valid rank body needs 6


@dataclass(frozen=True)
class Config:
    """The whole file: service-wide settings and the loops by name."""

    loops: dict
    publish_events: int = SERVICE_DEFAULTS["publish_events"]
    publish_seconds: float = SERVICE_DEFAULTS["publish_seconds"]
    models_keep: int = MODELS_DEFAULTS["keep"]
    models_check_latency: float = 0.005
    learner_lock: float = SERVICE_DEFAULTS["learner_lock"]
    max_actions: int = SERVICE_DEFAULTS["max_actions"]
    max_body_bytes: int = SERVICE_DEFAULTS["max_body_bytes"]
    max_features: int = SERVICE_DEFAULTS["max_features"]
    max_string_length: int = SERVICE_DEFAULTS["max_string_length"]
    max_depth: int = SERVICE_DEFAULTS["max_depth"]
    read_timeout: float = SERVICE_DEFAULTS["read_timeout"]
    allow_anonymous: bool = SERVICE_DEFAULTS["allow_anonymous"]
    data_dir: str = SERVICE_DEFAULTS["data_dir"]
    durability: str = SERVICE_DEFAULTS["durability"]
    source: str = field(default="<dict>", compare=False)

    @cached_property
    def limits(self) -> Limits:
        """The rank body limits, checked by :mod:`service.api.limits`."""
        return Limits(self.max_body_bytes, self.max_actions, self.max_features,
                      self.max_string_length, self.max_depth)


def load_config(path: str) -> Config:
    """Read and validate a TOML file."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from exc
    return parse_config(raw, source=path)


def parse_config(raw: dict, source: str = "<dict>") -> Config:
    """Validate an already parsed mapping (what the TOML file holds)."""
    _no_unknown(raw, ("service", "models", "loops"), "")
    service, models = raw.get("service", {}), raw.get("models", {})
    _table(service, "service")
    _table(models, "models")
    if "model_history" in service:
        raise ConfigError("service.model_history", "replaced by models.keep (the model "
                          "versions kept per loop, default 50) in a [models] table")
    _no_unknown(service, SERVICE_DEFAULTS, "service.")
    _no_unknown(models, MODELS_DEFAULTS, "models.")
    s = {**SERVICE_DEFAULTS, **service}
    loops = raw.get("loops")
    if not isinstance(loops, dict) or not loops:
        raise ConfigError("loops", "at least one [loops.<name>] table is required")
    parsed = {name: _loop(name, spec) for name, spec in loops.items()}
    return Config(
        loops=parsed,
        publish_events=_int(s["publish_events"], "service.publish_events", 1),
        publish_seconds=duration(s["publish_seconds"], "service.publish_seconds"),
        models_keep=_int(models.get("keep", MODELS_DEFAULTS["keep"]), "models.keep", 2),
        models_check_latency=duration(models.get("check_latency", MODELS_DEFAULTS["check_latency"]),
                                      "models.check_latency"),
        learner_lock=duration(s["learner_lock"], "service.learner_lock"),
        max_actions=_int(s["max_actions"], "service.max_actions", 1),
        max_body_bytes=_int(s["max_body_bytes"], "service.max_body_bytes", 1024),
        max_features=_int(s["max_features"], "service.max_features", 1),
        max_string_length=_int(s["max_string_length"], "service.max_string_length", 128),
        max_depth=_int(s["max_depth"], "service.max_depth", 2),
        read_timeout=duration(s["read_timeout"], "service.read_timeout"),
        allow_anonymous=_bool(s["allow_anonymous"], "service.allow_anonymous"),
        data_dir=_str(s["data_dir"], "service.data_dir"),
        durability=_durability(s["durability"]),
        source=source)


def _durability(value: Any) -> str:
    if value not in DURABILITY:
        raise ConfigError("service.durability", f"must be one of {', '.join(map(repr, DURABILITY))}, "
                          f"got {value!r}")
    return value


def duration(value: Any, key: str) -> float:
    """Seconds from a number or a string like ``"10m"``; must be > 0."""
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)\s*", value)
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(key, f"must be a positive duration (seconds, or e.g. '30s', '10m', "
                               f"'2h', '7d'), got {describe(value)}")
    return seconds


def _loop(name: str, spec: Any) -> LoopConfig:
    prefix = f"loops.{name}"
    if not _LOOP_NAME.match(str(name)):
        raise ConfigError(prefix, "loop names are 1-64 characters: letters, digits, '_', '.', '-'")
    _table(spec, prefix)
    _no_unknown(spec, LOOP_DEFAULTS, prefix + ".")
    s = {**LOOP_DEFAULTS, **spec}
    _table(s["policy"], prefix + ".policy")
    _table(s["featurizer"], prefix + ".featurizer")
    session = _session(s["session"], prefix + ".session")
    actions = s["actions"]
    if actions is not None:
        try:
            actions = [{"id": aid, "features": feats} for aid, feats in normalize_actions(actions)]
        except FeatureError as exc:
            raise ConfigError(f"{prefix}.{exc.field}", str(exc).partition(": ")[2]) from exc
    def checked(policy: dict, featurizer: dict, at: str) -> dict:
        policy = _policy_spec(policy, actions, session, at)
        if policy.get("model") == "disjoint" and actions is None:
            raise ConfigError(prefix + ".actions", "required with policy.model = 'disjoint': it "
                              "keeps one model per action id, so per-request candidates would add "
                              "a model for every new id (use model = 'shared' for those)")
        try:
            make_featurizer(featurizer)
            make_policy(policy, featurizer)
        except PolicyConfigError as exc:
            part = "featurizer" if str(exc.key).startswith("featurizer.") else "policy"
            key = exc.key.partition(".")[2] if part == "featurizer" else exc.key
            raise ConfigError(f"{at}.{part}.{key}", exc.message, exc.allowed) from exc
        return policy

    policy = checked(dict(s["policy"]), s["featurizer"], prefix)
    challengers = parse_challengers(s["challengers"], prefix + ".challengers", s["featurizer"],
                                    checked)
    if challengers and session is not None:
        raise ConfigError(prefix + ".challengers", "sequential loops (with a session table) "
                                                   "have no challengers")
    slots = _slots(s["slots"], prefix + ".slots", session, actions)
    wait = duration(s["reward_wait"], prefix + ".reward_wait")
    retention = duration(s["retention"], prefix + ".retention")
    if retention < wait:
        raise ConfigError(prefix + ".retention", f"must be at least reward_wait ({wait:g} s): "
                                                 "the learner reads decisions from the log")
    try:
        reward = check_value(s["default_reward"], "default_reward")
    except FeatureError as exc:
        raise ConfigError(f"{prefix}.{exc.field}", str(exc).partition(": ")[2]) from exc
    return LoopConfig(name=name, policy=policy, featurizer=dict(s["featurizer"]),
                      actions=actions, reward_wait=wait, default_reward=reward,
                      seed=_int(s["seed"], prefix + ".seed", 0), retention=retention,
                      session=session, challengers=challengers,
                      evaluation=parse_evaluation(s["evaluation"], prefix + ".evaluation",
                                                  duration, _int),
                      promotion=parse_promotion(s["promotion"], prefix + ".promotion",
                                                duration, _int),
                      health=parse_health(s["health"], prefix + ".health", duration, _int),
                      drift=parse_drift(s["drift"], prefix + ".drift", duration, _int),
                      slots=slots)


def _slots(spec: Any, key: str, session: dict | None, actions: list | None) -> tuple:
    """The loop's slots (empty: one decision per request)."""
    if spec is None:
        return ()
    if session is not None:
        raise ConfigError(key, "sequential loops (with a session table) decide one action per step")
    try:
        slots = parse_slots(spec, key)
    except FeatureError as exc:
        raise ConfigError(exc.field, str(exc).partition(": ")[2]) from exc
    if actions is not None:
        ids = {a["id"] for a in actions}
        if len(slots) > len(ids):
            raise ConfigError(key, f"{len(slots)} slots for {len(ids)} actions: each slot "
                                   "shows a different action")
        for j, slot in enumerate(slots):
            unknown = sorted((slot.actions or set()) - ids)
            if unknown:
                raise ConfigError(f"{key}[{j}].actions", f"{unknown[0]!r} is not one of the "
                                                         "loop's actions")
    return slots


def _session(spec: Any, key: str) -> dict | None:
    """The validated ``session`` table, or None for a (non-sequential) bandit loop."""
    if spec is None:
        return None
    _table(spec, key)
    _no_unknown(spec, SESSION_DEFAULTS, key + ".")
    s = {**SESSION_DEFAULTS, **spec}
    return {"ttl": duration(s["ttl"], key + ".ttl"), "history": _int(s["history"], key + ".history", 1)}


def _policy_spec(policy: dict, actions: list | None, session: dict | None, prefix: str) -> dict:
    """The policy spec, with the fixed action ids filled in for policies that take
    ``action_ids`` (a Q-network's outputs are actions); sequential policies (class
    attribute ``sequential = True``) need a ``session`` table."""
    if "type" not in policy:
        return policy  # make_policy names the missing key
    try:
        cls = resolve(policy["type"], "type")
    except PolicyConfigError as exc:
        raise ConfigError(f"{prefix}.policy.{exc.key}", exc.message, exc.allowed) from exc
    if getattr(cls, "sequential", False) and session is None:
        raise ConfigError(f"{prefix}.session", f"required: policy {policy['type']!r} is "
                                               "sequential (it acts on the session's history)")
    takes_ids = "action_ids" in inspect.signature(cls.__init__).parameters
    if takes_ids and "action_ids" not in policy and actions is not None:
        policy["action_ids"] = [a["id"] for a in actions]
    return policy


def _no_unknown(table: dict, allowed, prefix: str) -> None:
    for key in table:
        if key in _SECRETS:
            raise ConfigError(prefix + key, "secrets come from the environment (REDIS_URL), "
                                            "never from the configuration file")
        if key not in allowed:
            raise ConfigError(prefix + key, "unknown key", list(allowed))


def _table(value: Any, key: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a table, got {describe(value)}")


def _int(value: Any, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, f"must be an integer >= {low}, got {describe(value)}")
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {describe(value)}")
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f"must be a non-empty string, got {describe(value)}")
    return value
