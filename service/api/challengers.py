"""The challenger routes of a loop: their live figures and the promotion of one.

Both need the ``admin`` role (:data:`service.api.routes.ROUTE_ROLES`); the gate and
the promotion live in :mod:`service.promotion`.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from .. import promotion
from ..errors import BadRequest
from .body import read_body
from .requests import parse_body
from .routes import loop_service
from .versions import caller, parse_reason

bp = Blueprint("challengers", __name__)


@bp.get("/v1/loops/<loop>/challengers")
def list_challengers(loop):
    return jsonify(promotion.report(loop_service(loop)))


@bp.post("/v1/loops/<loop>/promote")
def promote(loop):
    service = loop_service(loop)
    config = current_app.extensions["cbserve"]["config"]
    body = parse_body(read_body(config.max_body_bytes, config.read_timeout),
                      request.content_type, config.max_body_bytes)
    name, reason, force = parse_promote(body)
    return jsonify(promotion.promote(service, name, caller(), reason, force))


def parse_promote(body: dict) -> tuple:
    """``(challenger, reason, force)`` of a promote body; 400 naming the field."""
    allowed = ("challenger", "reason", "force")
    for field in body:
        if field not in allowed:
            raise BadRequest(f"{field}: unknown field (allowed: {', '.join(allowed)})")
    name = body.get("challenger")
    if not isinstance(name, str) or not name:
        raise BadRequest("challenger: required, the name of one of the loop's challengers")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest("force: must be true or false")
    return name, parse_reason(body.get("reason", "")), force
