"""The Flask application factory: ``gunicorn 'service.app:create_app()'``.

Configuration comes from the argument or the file named by ``CBSERVE_CONFIG``; Redis
from the given client or ``REDIS_URL`` (default ``redis://localhost:6379/0``). Every
error becomes ``{"error": {"code", "message"}}`` with its status, here and only here.
With no API key configured, ``create_app()`` refuses to start unless the file sets
``service.allow_anonymous = true``, as ``cbserve api`` does unless given ``--no-auth``.
With ``service.durability = "replicated"`` a rank or reward is answered once a replica
has its write (503 otherwise).
"""
from __future__ import annotations

import gc
import logging
import os

import redis
from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from .api.auth import Authenticator, load_keys, refuse_open
from .api.body import bound_reads
from .api.routes import authorize, bp
from .api.challengers import bp as challengers_bp
from .api.health import bp as health_bp
from .api.dashboard import bp as dashboard_bp
from .api.versions import bp as models_bp
from .config import Config, load_config
from .errors import ApiError, ConfigError
from .loops import LoopService
from .store import redis_from_env
from .threads import one_blas_thread
from .store.client import REPLICA_WAIT_MS

log = logging.getLogger(__name__)


def config_from_env() -> Config:
    """The configuration named by ``CBSERVE_CONFIG``. Its errors are exceptions, not an
    exit: gunicorn stops on a worker that fails to boot, and respawns one that exits."""
    path = os.environ.get("CBSERVE_CONFIG")
    if not path:
        raise ConfigError("CBSERVE_CONFIG", "not set: it names the configuration file")
    return load_config(path)


def create_app(config: Config | None = None, client: redis.Redis | None = None,
               keys: list | None = None, anonymous: bool | None = None) -> Flask:
    """A WSGI app serving every loop of ``config`` against ``client``; API ``keys``
    default to those of the environment (:mod:`service.api.auth`).

    ``anonymous`` says whether the app may serve with no key configured. By default it
    is ``service.allow_anonymous`` when the configuration is read from
    ``CBSERVE_CONFIG`` (``create_app()`` as a WSGI server calls it), and true when the
    caller passes one (``cbserve serve`` warns; ``cbserve api`` checks first).
    """
    one_blas_thread()
    from_env = config is None
    config = config or config_from_env()
    client = client or redis_from_env()
    auth = Authenticator(load_keys() if keys is None else keys)
    if anonymous is None:
        anonymous = config.allow_anonymous if from_env else True
    refuse_open(auth, anonymous)
    if not auth.enabled:
        log.warning("no API keys configured: every route is open (see service.api.auth)")
    app = Flask("cbserve")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    loops = {name: LoopService(client, loop, config) for name, loop in config.loops.items()}
    if config.durability == "replicated":
        for service in loops.values():
            service.store.replicate(1, REPLICA_WAIT_MS)
    app.extensions["cbserve"] = {"config": config, "redis": client, "loops": loops, "auth": auth}
    app.before_request(bound_reads(config.read_timeout))
    if auth.enabled:  # an open service pays nothing per request
        app.before_request(authorize)
    app.register_blueprint(bp)
    app.register_blueprint(models_bp)
    app.register_blueprint(challengers_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(dashboard_bp)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # GC, whose full passes over it otherwise cost tens of milliseconds (p99 spikes).
    gc.collect()
    gc.freeze()
    return app


def _error(status: int, code: str, message: str, details: dict | None = None):
    return jsonify({"error": {"code": code, "message": message, **(details or {})}}), status


def _api_error(exc: ApiError):
    if exc.status >= 500:
        log.error("%s", exc.message)
    body, status = _error(exc.status, exc.code, exc.message, getattr(exc, "details", None))
    if status == 401:
        body.headers["WWW-Authenticate"] = 'Bearer realm="cbserve"'
    if status == 503:
        body.headers["Retry-After"] = "1"
    return body, status


def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    message = exc.description or exc.name
    if exc.code == 413:  # werkzeug's own check of Content-Length (or a chunked body)
        limit = current_app.extensions["cbserve"]["config"].max_body_bytes
        message = f"body exceeds service.max_body_bytes = {limit}"
    return _error(exc.code or 500, code, message)


def _unexpected(exc: Exception):
    log.exception("unhandled error")
    return _error(500, "internal", f"internal error ({type(exc).__name__}); see the server log")
