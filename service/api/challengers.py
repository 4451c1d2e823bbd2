"""The challenger routes of a loop: their live figures and the promotion of one.

Both need the ``admin`` role (:data:`service.api.routes.ROUTE_ROLES`); the gate and
the promotion live in :mod:`service.promotion`.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from .. import promotion
from ..errors import BadRequest
from .routes import json_body, loop_service
from .versions import caller, parse_reason

bp = Blueprint("challengers", __name__)


@bp.get("/v1/loops/<loop>/challengers")
def list_challengers(loop):
    return jsonify(promotion.report(loop_service(loop)))


@bp.post("/v1/loops/<loop>/promote")
def promote(loop):
    service = loop_service(loop)
    name, reason, force = parse_promote(json_body())
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
