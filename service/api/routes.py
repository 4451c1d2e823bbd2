"""The HTTP views under ``/v1``, plus ``/healthz``, ``/metrics`` and ``/openapi.json``.

Views only parse, call :class:`service.loops.LoopService` and serialize; errors are
raised as :class:`service.errors.ApiError` and rendered by :mod:`service.app`.
"""
from __future__ import annotations

import time

import orjson
from flask import Blueprint, Response, current_app, g, jsonify, request

from . import metrics
from .body import read_body
from ..errors import BadRequest, NotFound
from .openapi import document
from .rank_body import typed_rank
from .requests import check_event_id, explain_query, parse_body, parse_end, parse_rank, parse_reward

bp = Blueprint("cbserve", __name__)

#: The role each endpoint needs (``None``: any valid key); ``/healthz`` is public.
ROUTE_ROLES = {"cbserve.rank": "decide", "cbserve.reward": "decide", "cbserve.activate": "decide",
               "cbserve.end_session": "decide", "cbserve.list_loops": "admin",
               "cbserve.get_loop": "admin", "cbserve.prometheus": "admin", "cbserve.openapi": None,
               "models.list_models": "admin", "models.get_model": "admin",
               "models.get_snapshot": "admin", "models.upload_model": "admin",
               "models.explain_model": "admin",
               "models.deploy": "admin", "models.audit": "admin",
               "challengers.list_challengers": "admin", "challengers.promote": "admin",
               "health.loop_health_route": "admin"}
PUBLIC = frozenset({"cbserve.healthz", "dashboard.page", "dashboard.asset"})


def authorize():
    """App-wide ``before_request``: 401/403 before anything else (unknown routes too)."""
    if request.endpoint in PUBLIC:
        return
    auth = current_app.extensions["cbserve"]["auth"]
    g.api_key = auth.require(request.headers, ROUTE_ROLES.get(request.endpoint),
                             (request.view_args or {}).get("loop"))


def _visible_loops() -> dict:
    """The loops the caller's key is scoped to."""
    loops = current_app.extensions["cbserve"]["loops"]
    names = current_app.extensions["cbserve"]["auth"].visible(g.get("api_key"), loops)
    return {name: loops[name] for name in names}


def loop_service(name: str):
    loops = current_app.extensions["cbserve"]["loops"]
    if name not in loops:
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise NotFound(f"unknown loop {shown!r} (configured: {', '.join(sorted(loops))})")
    return loops[name]


def json_body() -> dict:
    """The request's JSON body, read within the limits (400/408/413/415 otherwise)."""
    config = current_app.extensions["cbserve"]["config"]
    raw = read_body(config.max_body_bytes, config.read_timeout)
    return parse_body(raw, request.content_type, config.max_body_bytes)


@bp.post("/v1/loops/<loop>/rank")
def rank(loop):
    started = time.perf_counter()
    service = loop_service(loop)
    config = current_app.extensions["cbserve"]["config"]
    raw = read_body(config.max_body_bytes, config.read_timeout)
    usual = request.content_type == "application/json" and len(raw) <= config.max_body_bytes
    req = typed_rank(raw, config.limits) if usual else None
    if req is None:  # anything unusual: the path that words each error
        req = parse_rank(parse_body(raw, request.content_type, config.max_body_bytes), config.limits)
    if request.query_string and not req.explain:
        req.explain = explain_query(request.args.get("explain"))
    return Response(orjson.dumps(service.rank(req, started)), mimetype="application/json")


@bp.post("/v1/loops/<loop>/events/<event_id>/reward")
def reward(loop, event_id):
    service = loop_service(loop)
    check_event_id(event_id)
    body = json_body()
    value, end, slot_values = parse_reward(body)
    if end and not service.loop.sequential:
        raise BadRequest(f"end: loop {loop!r} is not sequential (it has no session table)")
    if slot_values is not None:
        status = service.store.reward_slots(event_id, slot_values, "slot" if "slot" in body else "values")
        return jsonify({"event_id": event_id, "values": slot_values,
                        "status": "accepted" if status == "ok" else "duplicate"})
    status = service.store.reward(event_id, value, end)
    return jsonify({"event_id": event_id, "value": value,
                    "status": "accepted" if status == "ok" else "duplicate"})


@bp.post("/v1/loops/<loop>/sessions/<session_id>/end")
def end_session(loop, session_id):
    service = loop_service(loop)
    check_event_id(session_id, "session_id")
    if not service.loop.sequential:
        raise BadRequest(f"loop {loop!r} is not sequential (it has no session table)")
    if request.content_length:
        parse_end(json_body())
    status, steps = service.store.end_session(session_id)
    return jsonify({"session_id": session_id, "steps": steps,
                    "status": "ended" if status == "ok" else "already_ended"})


@bp.post("/v1/loops/<loop>/events/<event_id>/activate")
def activate(loop, event_id):
    service = loop_service(loop)
    check_event_id(event_id)
    status = service.store.activate(event_id)
    return jsonify({"event_id": event_id,
                    "status": "activated" if status == "ok" else "already_active"})


@bp.get("/v1/loops")
def list_loops():
    return jsonify({"loops": [service.summary() for service in _visible_loops().values()]})


@bp.get("/v1/loops/<loop>")
def get_loop(loop):
    return jsonify(loop_service(loop).summary())


@bp.get("/healthz")
def healthz():
    client = current_app.extensions["cbserve"]["redis"]
    loops = sorted(current_app.extensions["cbserve"]["loops"])
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return jsonify({"status": "unavailable", "redis": False, "loops": loops,
                        "error": {"code": "store_unavailable", "message": f"Redis: {exc}"}}), 503
    return jsonify({"status": "ok", "redis": True, "loops": loops})


@bp.get("/metrics")
def prometheus():
    body = metrics.render(_visible_loops())
    return Response(body, mimetype="text/plain; version=0.0.4")


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
