"""``GET /v1/loops/<loop>/health?window=1h``: a loop's health at a glance (admin).

The figures and status rules are :mod:`service.health`'s; the Redis side is
:class:`service.store.health.HealthStore`, one round trip.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import health
from ..errors import BadRequest
from ..store.health import HealthStore
from .routes import loop_service

bp = Blueprint("health", __name__)


def loop_health(service, window_s: int, now: float | None = None) -> dict:
    """The health report of one :class:`service.loops.LoopService` over ``window_s``."""
    return HealthStore(service.store.r, service.loop).report(window_s, now)


@bp.get("/v1/loops/<loop>/health")
def loop_health_route(loop):
    service = loop_service(loop)
    try:
        window = health.parse_window(request.args.get("window"), service.loop.health["retention"])
    except health.WindowError as exc:
        raise BadRequest(str(exc)) from exc
    return jsonify(loop_health(service, window))
