"""API keys: who may call which route of which loop.

A key has a role — ``decide`` (rank, reward, activate, end a session) or ``admin``
(loop configuration and model routes, ``/metrics``; an admin may also decide) — and
the loops it is scoped to (``"*"``: all). Keys come only from the environment:

- ``CBSERVE_API_KEYS``: a JSON list of ``{"key": "<secret>", "role": ..., "loops": [...],
  "name": ...}`` (for containers whose secret store fills environment variables);
- ``CBSERVE_API_KEYS_FILE``: the path of a TOML file of ``[[keys]]`` holding
  ``sha256 = "<hex digest of the key>"`` instead of the key itself.

Only SHA-256 digests are kept in memory; a presented key is hashed and compared with
every configured digest by :func:`hmac.compare_digest` (no early exit), and keys
never appear in a log line or an error message. No key configured means no auth,
which production refuses by default: ``gunicorn 'service.app:create_app()'`` does not
start unless the configuration sets ``service.allow_anonymous = true``, ``cbserve api``
unless given ``--no-auth``; ``cbserve serve`` (local use) warns and runs open.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tomllib
from dataclasses import dataclass

from bandits.inputs import describe

from ..errors import ConfigError, Forbidden, Unauthorized

ROLES = ("decide", "admin")
ENV_KEYS, ENV_FILE = "CBSERVE_API_KEYS", "CBSERVE_API_KEYS_FILE"
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its digest, role and loops (``None``: every loop)."""

    name: str
    digest: bytes
    role: str
    loops: frozenset | None

    def may(self, role: str, loop: str | None) -> bool:
        """Whether this key may act in ``role`` on ``loop`` (``None``: no particular loop)."""
        if role == "admin" and self.role != "admin":
            return False
        return self.loops is None or loop is None or loop in self.loops


def parse_key(entry, where: str, hashed_only: bool) -> ApiKey:
    """An :class:`ApiKey` from one configured entry; errors name ``where`` and the field."""
    if not isinstance(entry, dict):
        raise ConfigError(where, "must be a table/object with role, loops and the key")
    allowed = ("sha256", "role", "loops", "name") if hashed_only else ("key", "sha256", "role", "loops", "name")
    for field in entry:
        if field not in allowed:
            raise ConfigError(f"{where}.{field}", "unknown field", allowed)
    if "key" in entry:
        if not isinstance(entry["key"], str) or len(entry["key"]) < 16:
            raise ConfigError(f"{where}.key", "must be a string of at least 16 characters")
        d = digest(entry["key"])
    elif isinstance(entry.get("sha256"), str) and _HEX64.match(entry["sha256"]):
        d = bytes.fromhex(entry["sha256"])
    else:
        need = "sha256 (64 lowercase hex digits)" if hashed_only else "key, or sha256 (64 hex digits)"
        raise ConfigError(f"{where}.sha256" if hashed_only or "sha256" in entry else where, f"needs {need}")
    role = entry.get("role")
    if role not in ROLES:
        problem = f"unknown role {role!r}" if isinstance(role, str) else (
            f"must be a role name, got {describe(role)}" if "role" in entry else "required")
        raise ConfigError(f"{where}.role", problem, ROLES)
    loops = entry.get("loops", "*")
    if loops != "*" and not (isinstance(loops, list) and loops and all(isinstance(x, str) for x in loops)):
        raise ConfigError(f"{where}.loops", 'must be "*" or a non-empty list of loop names')
    return ApiKey(str(entry.get("name", where)), d, role, None if loops == "*" else frozenset(loops))


def load_keys(environ=None) -> list:
    """Every key configured in the environment (see the module docstring)."""
    environ = os.environ if environ is None else environ
    keys = []
    if environ.get(ENV_KEYS):
        try:
            entries = json.loads(environ[ENV_KEYS])
        except json.JSONDecodeError as exc:
            raise ConfigError(ENV_KEYS, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(entries, list):
            raise ConfigError(ENV_KEYS, "must be a JSON list of keys")
        keys += [parse_key(e, f"{ENV_KEYS}[{i}]", False) for i, e in enumerate(entries)]
    if environ.get(ENV_FILE):
        path = environ[ENV_FILE]
        try:
            with open(path, "rb") as fh:
                entries = tomllib.load(fh).get("keys", [])
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(ENV_FILE, f"cannot read {path!r}: {exc}") from None
        keys += [parse_key(e, f"{path}: keys[{i}]", True) for i, e in enumerate(entries)]
    return keys


def refuse_open(auth: "Authenticator", allowed: bool) -> None:
    """Stop the start-up when no key is configured and serving open is not ``allowed``."""
    if not auth.enabled and not allowed:
        raise ConfigError("service.allow_anonymous", f"no API key configured ({ENV_KEYS} or "
                          f"{ENV_FILE}), and the API does not run open unless the configuration "
                          "sets allow_anonymous = true in [service] (for use behind a gateway "
                          "that authenticates)")


def presented(headers) -> str | None:
    """The key sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("X-API-Key") or None


class Authenticator:
    """Checks a request's key against the configured ones."""

    def __init__(self, keys: list):
        self.keys = list(keys)

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def identify(self, key: str | None) -> ApiKey | None:
        """The configured key matching ``key``; every digest is compared, in constant time."""
        if key is None:
            return None
        d, found = digest(key), None
        for k in self.keys:
            if hmac.compare_digest(k.digest, d):
                found = k
        return found

    def require(self, headers, role: str | None, loop: str | None) -> ApiKey | None:
        """The caller's key, or :class:`Unauthorized` / :class:`Forbidden`. ``role=None``:
        any valid key will do."""
        if not self.enabled:
            return None
        key = self.identify(presented(headers))
        if key is None:
            raise Unauthorized("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")
        if role is not None and not key.may(role, loop):
            what = "rank or reward" if role == "decide" else "use admin routes"
            where = f" on loop {loop!r}" if loop is not None else ""
            raise Forbidden(f"key {key.name!r} (role {key.role}) may not {what}{where}")
        return key

    def visible(self, key: ApiKey | None, names) -> list:
        """The loop names among ``names`` that ``key`` may see, sorted."""
        return sorted(n for n in names if key is None or key.loops is None or n in key.loops)
