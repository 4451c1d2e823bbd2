"""The service's errors: one base, HTTP errors on one side, command errors on the other.

- :class:`ApiError` subclasses carry an HTTP status and a short machine-readable code;
  :mod:`service.app` turns each into a JSON response, and nothing else does.
- :class:`CommandError`: a command (``cbserve``, the scripts) cannot run as asked; it
  prints the message and exits with status 2.
- :class:`ConfigError`: the configuration is wrong (start-up only, never an HTTP
  answer). It is a :class:`bandits.ConfigError`, so one family covers every
  configuration problem, from a policy parameter to a key of the file.

Messages name the field at fault. Redis failures are mapped at the boundary
(:mod:`service.store.client`) to :class:`StoreError`.
"""
from __future__ import annotations

from bandits.errors import ConfigError as PolicyConfigError

__all__ = ["ApiError", "BadRequest", "CheckFailed", "CommandError", "ConfigError", "Conflict",
           "Forbidden", "GateRefused", "Gone", "InvalidSnapshot", "LimitExceeded", "NotFound",
           "PayloadTooLarge", "RequestTimeout", "ServiceError", "StoreError", "Unauthorized",
           "UnsupportedMediaType"]


class ServiceError(Exception):
    """Base of every error the service raises on purpose; ``message`` is its text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class CommandError(ServiceError):
    """A command cannot run as asked: an option, an environment variable or the data
    directory is wrong or in use."""


class ConfigError(PolicyConfigError, ServiceError):
    """The configuration file or a variable of the environment has an unknown key or a
    bad value; ``key`` names it. As for every :class:`ServiceError`, ``message`` is the
    whole text (``bandits.ConfigError.message`` is the part after the key)."""

    def __init__(self, key, message, allowed=None):
        super().__init__(key, message, allowed)
        self.message = str(self)


class ApiError(ServiceError):
    """An error answered over HTTP as ``{"error": {"code", "message"}}`` with ``status``."""

    status = 500
    code = "internal"


class BadRequest(ApiError):
    """The request body or a parameter is malformed or invalid."""

    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    """No API key, or one that matches no configured key."""

    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    """A valid key used outside its loops or its role."""

    status, code = 403, "forbidden"


class NotFound(ApiError):
    """Unknown loop or event."""

    status, code = 404, "not_found"


class Conflict(ApiError):
    """Reused event id, or a second reward with a different value."""

    status, code = 409, "conflict"


class Gone(ApiError):
    """The event's reward window has closed."""

    status, code = 410, "gone"


class RequestTimeout(ApiError):
    """The body did not arrive within ``service.read_timeout``."""

    status, code = 408, "request_timeout"


class PayloadTooLarge(ApiError):
    """The body exceeds ``service.max_body_bytes``."""

    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    """The body is not ``application/json``."""

    status, code = 415, "unsupported_media_type"


class LimitExceeded(ApiError):
    """A rank body over one of the configured limits (:mod:`service.api.limits`)."""

    status, code = 422, "limit_exceeded"


class GateRefused(Conflict):
    """A promotion the gate refused (:func:`service.challengers.gate`); ``details``
    holds the figures it was judged on."""

    code = "gate_refused"

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = details


class CheckFailed(ApiError):
    """A pre-deployment check refused the version (:mod:`service.checks`)."""

    status, code = 422, "check_failed"


class InvalidSnapshot(ApiError):
    """An uploaded model snapshot that the loop's policy class cannot load."""

    status, code = 422, "invalid_snapshot"


class StoreError(ApiError):
    """Redis is unreachable or refused a command."""

    status, code = 503, "store_unavailable"
