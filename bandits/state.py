"""The state vector of a sequential policy: context features plus the session's history.

A sequential loop passes the session state to ``decide`` inside the context, under the
metadata namespace ``_session`` (``{"step": n, "history": [{"action": id, "reward":
r | None}, ...]}``, oldest step first). The encoding is declared in configuration::

    state = {features = ["user.engagement", "user.tenure"], history = 3, step = true}

and gives, in this order: each listed numeric context feature (``namespace.name``;
0 when absent), the step index (when ``step``), then for the last ``history`` steps,
most recent first, a one-hot of the action over ``action_ids`` and its reward (0 while
unknown, and for steps before the episode began). Dimension:
``len(features) + step + history * (len(action_ids) + 1)``.

Examples
--------
>>> enc = StateEncoder({"features": ["user.x"], "history": 2, "step": True}, ["a", "b"])
>>> enc.dim
8
>>> ctx = {"user": {"x": 0.5}, "_session": {"step": 1,
...        "history": [{"action": "b", "reward": 1.0}]}}
>>> enc.encode(ctx).tolist()
[0.5, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .errors import ConfigError
from .inputs import check_value
from .params import check_bool, check_int

#: Context namespace holding the session state (set by the service, never a feature).
SESSION_KEY = "_session"
_KEYS = ("features", "history", "step")


class StateEncoder:
    """Context + session state → float64 vector, as declared by a ``state`` spec."""

    def __init__(self, spec: Mapping | None, action_ids):
        spec = dict(spec or {})
        for key in spec:
            if key not in _KEYS:
                raise ConfigError(f"state.{key}", "unknown key", _KEYS)
        features = spec.get("features", [])
        if not isinstance(features, list) or not all(
                isinstance(f, str) and f.count(".") == 1 and all(f.split(".")) for f in features):
            raise ConfigError("state.features", "must be a list of 'namespace.feature' names")
        self.features = [tuple(f.split(".")) for f in features]
        self.history = check_int("state.history", spec.get("history", 1), 0)
        self.step = check_bool("state.step", spec.get("step", False))
        self.action_ids = list(action_ids)
        self._index = {aid: i for i, aid in enumerate(self.action_ids)}
        self.spec = {"features": features, "history": self.history, "step": self.step}
        k = len(self.action_ids)
        self.dim = len(self.features) + int(self.step) + self.history * (k + 1)

    def encode(self, context: Mapping) -> np.ndarray:
        """The state vector for one decision (FeatureError on a non-numeric feature)."""
        x = np.zeros(self.dim)
        for j, (ns, name) in enumerate(self.features):
            value = (context.get(ns) or {}).get(name, 0.0)
            x[j] = check_value(value, f"context.{ns}.{name}")
        session = context.get(SESSION_KEY) or {}
        at = len(self.features)
        if self.step:
            x[at] = float(session.get("step", 0))
            at += 1
        width = len(self.action_ids) + 1
        past = session.get("history", [])[::-1][:self.history]
        for h, item in enumerate(past):
            i = self._index.get(item.get("action"))
            if i is not None:
                x[at + h * width + i] = 1.0
            reward = item.get("reward")
            x[at + h * width + width - 1] = 0.0 if reward is None else float(reward)
        return x
