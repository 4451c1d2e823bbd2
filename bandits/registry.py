"""Build policies from mappings: ``make_policy({"type": "linucb", "alpha": 1.0})``.

``type`` is a registered name (:data:`BUILTINS`) or ``"package.module:Class"`` for a
plugin: any class with ``decide``, ``learn``, ``to_bytes`` and a ``from_bytes``
classmethod (subclassing :class:`bandits.base.Policy` gives all four).

Examples
--------
>>> make_policy({"type": "linucb", "alpha": 0.5}).alpha
0.5
>>> make_policy({"type": "linucb", "alpah": 0.5})
Traceback (most recent call last):
...
bandits.errors.ConfigError: alpah: unknown parameter of policy 'linucb' (allowed: alpha, epsilon, featurizer, l2, model, window)
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping

from .errors import ConfigError
from .inputs import describe
from .snapshot import unpack

#: Registered policy names and the classes they load.
BUILTINS = {
    "epsilon_greedy": "bandits.epsilon_greedy:EpsilonGreedy",
    "linucb": "bandits.linucb:LinUCB",
    "lints": "bandits.lints:LinTS",
    "vw": "bandits.vw:VWPolicy",
    "qnetwork": "bandits.qnetwork:QNetworkPolicy",
}
_INTERFACE = ("decide", "learn", "to_bytes", "from_bytes")


def resolve(type_name: Any, key: str = "type") -> type:
    """The policy class for a registered name or a ``module:Class`` path."""
    if not isinstance(type_name, str):
        raise ConfigError(key, f"must be a string, got {describe(type_name)}", sorted(BUILTINS))
    target = BUILTINS.get(type_name, type_name)
    if ":" not in target:
        raise ConfigError(key, f"unknown policy type {type_name!r}",
                          sorted(BUILTINS) + ["package.module:Class"])
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(key, f"cannot load plugin {target!r}: {exc}") from exc
    missing = [m for m in _INTERFACE if not callable(getattr(cls, m, None))]
    if not isinstance(cls, type) or missing:
        raise ConfigError(key, f"{target!r} does not implement the policy interface "
                               f"(missing: {', '.join(missing) or 'a class'})")
    return cls


def make_policy(spec: Mapping, featurizer: Mapping | None = None):
    """A policy from its specification; ``featurizer`` is used when the spec has none.

    Unknown types and parameters raise :class:`ConfigError` naming the key and the
    allowed values; so do bad values (each policy validates its own).
    """
    if not isinstance(spec, Mapping):
        raise ConfigError("policy", "must be a mapping with a 'type' key")
    if "type" not in spec:
        raise ConfigError("type", "missing", sorted(BUILTINS) + ["package.module:Class"])
    params = {k: v for k, v in spec.items() if k != "type"}
    cls = resolve(spec["type"])
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    if featurizer is not None and "featurizer" in allowed:
        params.setdefault("featurizer", featurizer)
    for key in params:
        if key not in allowed:
            raise ConfigError(key, f"unknown parameter of policy {spec['type']!r}", sorted(allowed))
    try:
        return cls(**params)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(spec["type"]), f"bad parameters: {exc}") from exc


def load_policy(data: bytes):
    """Rebuild any policy (built-in or plugin) from its ``to_bytes`` snapshot."""
    meta, _ = unpack(data)
    return resolve(meta["type"], "snapshot type").from_bytes(data)
