"""One error family for the bandits package; every message names the field at fault."""


class BanditError(Exception):
    """Base class of every error raised by :mod:`bandits`."""


class ConfigError(BanditError, ValueError):
    """A policy or featurizer specification has an unknown key or a bad value."""

    def __init__(self, key, message, allowed=None):
        self.key = key
        self.message = message
        self.allowed = allowed
        text = f"{key}: {message}"
        if allowed is not None:
            text += f" (allowed: {', '.join(map(str, allowed))})"
        super().__init__(text)


class FeatureError(BanditError, ValueError):
    """A context, action or feedback record cannot be turned into features."""

    def __init__(self, field, message):
        self.field = field
        super().__init__(f"{field}: {message}")


class SnapshotError(BanditError, ValueError):
    """Bytes given to ``from_bytes`` are not a snapshot this code can load."""


class LogFormatError(BanditError, ValueError):
    """A logged decision is not in the layout :mod:`bandits.dsjson` reads; names the field."""


class VWError(BanditError):
    """Vowpal Wabbit failed on input that cbserve had accepted."""
