"""One error family for the service; :mod:`service.app` turns each into a JSON response.

Each error carries its HTTP status and a short machine-readable code; messages name
the field at fault. Redis failures are mapped at the boundary to :class:`StoreError`.
"""
from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(ServiceError):
    """The configuration file has an unknown key or a bad value (start-up only)."""

    code = "config"

    def __init__(self, key, message, allowed=None):
        self.key, self.allowed = key, allowed
        text = f"{key}: {message}"
        if allowed is not None:
            text += f" (allowed: {', '.join(map(str, allowed))})"
        super().__init__(text)


class BadRequest(ServiceError):
    """The request body or a parameter is malformed or invalid."""

    status, code = 400, "bad_request"


class Unauthorized(ServiceError):
    """No API key, or one that matches no configured key."""

    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    """A valid key used outside its loops or its role."""

    status, code = 403, "forbidden"


class NotFound(ServiceError):
    """Unknown loop or event."""

    status, code = 404, "not_found"


class Conflict(ServiceError):
    """Reused event id, or a second reward with a different value."""

    status, code = 409, "conflict"


class Gone(ServiceError):
    """The event's reward window has closed."""

    status, code = 410, "gone"


class RequestTimeout(ServiceError):
    """The body did not arrive within ``service.read_timeout``."""

    status, code = 408, "request_timeout"


class PayloadTooLarge(ServiceError):
    """The body exceeds ``service.max_body_bytes``."""

    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    """The body is not ``application/json``."""

    status, code = 415, "unsupported_media_type"


class StoreError(ServiceError):
    """Redis is unreachable or refused a command."""

    status, code = 503, "store_unavailable"


class LimitExceeded(ServiceError):
    """A rank body over one of the configured limits (:mod:`service.limits`)."""

    status, code = 422, "limit_exceeded"
