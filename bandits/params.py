"""One-line hyperparameter checks whose errors name the key and the allowed values."""
from __future__ import annotations

import math
from typing import Mapping

from .errors import ConfigError
from .inputs import describe


def check_number(key, value, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """A finite real number within [low, high] (ends excluded where ``*_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {describe(value)}")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ConfigError(key, f"must be in {lo}{low}, {high}{hi}, got {value}")
    return float(value)


def check_int(key, value, low=0, high=None):
    """An integer >= low (and <= high when given)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(key, f"must be an integer {bound}, got {describe(value)}")
    return value


def check_bool(key, value):
    """Exactly ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {describe(value)}")
    return value


def check_choice(key, value, choices):
    """One of ``choices``."""
    if value not in choices:
        raise ConfigError(key, f"must be one of the allowed values, got {describe(value)}", choices)
    return value


def check_lengths(key, value):
    """A mapping of names to positive lengths (``None`` is empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must map 'namespace.feature' to a length")
    for name, length in value.items():
        check_int(f"{key}.{name}", length, 1)
    return dict(value)
