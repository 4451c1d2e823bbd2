"""The model routes of a loop: its registry, deploy (roll back, pin), upload, audit.

Every route needs the ``admin`` role (:data:`service.api.routes.ROUTE_ROLES`); the
rules live in :mod:`service.deploys`, the Redis side in :mod:`service.store.registry`.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, g, jsonify, request

from .. import deploys, model_explain
from ..errors import BadRequest, NotFound, UnsupportedMediaType
from .body import read_body
from .routes import json_body, loop_service

bp = Blueprint("models", __name__)

#: Characters a deploy or upload reason may have.
MAX_REASON = 1024
#: Audit entries one request returns at most (``?count=``, default 100).
MAX_AUDIT = 1000


def caller() -> str:
    key = g.get("api_key")
    return key.name if key is not None else "anonymous"


def _version(text) -> int:
    if not str(text).isdigit():
        raise NotFound(f"no model version {text!r} (versions are positive integers)")
    return int(text)


@bp.get("/v1/loops/<loop>/models")
def list_models(loop):
    service = loop_service(loop)
    pointer = service.registry.serving()
    serving = int(pointer.get("version", 0))
    return jsonify({"serving": serving, "learning": pointer.get("learn") != "0",
                    "models": deploys.shown(service, service.registry.entries(), serving)})


@bp.get("/v1/loops/<loop>/models/<version>")
def get_model(loop, version):
    service, v = loop_service(loop), _version(version)
    entry = service.registry.entry(v)
    if entry is None:
        raise NotFound(deploys.unknown_message(service, v))
    return jsonify(deploys.shown(service, [entry], deploys.serving_version(service))[0])


@bp.get("/v1/loops/<loop>/models/<version>/explain")
def explain_model(loop, version):
    service, v, blob = _snapshot(loop, version)
    top = _count_arg("top", 20, 1000)
    events = service.store.recent_decisions(_count_arg("decisions", model_explain.DECISIONS, 20_000))
    out = model_explain.model_summary(blob, events, top)
    return jsonify({"version": v, "decisions_read": len(events), **out})


def _snapshot(loop, version) -> tuple:
    """``(loop service, version, snapshot bytes)`` of a registered version; 404 otherwise."""
    service, v = loop_service(loop), _version(version)
    blob = service.store.model_bytes(v) if service.registry.entry(v) else None
    if blob is None:
        raise NotFound(deploys.unknown_message(service, v))
    return service, v, blob


def _count_arg(name: str, default: int, most: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise BadRequest(f"{name}: must be an integer from 1 to {most}, got {text!r}")
    return int(text)


@bp.get("/v1/loops/<loop>/models/<version>/snapshot")
def get_snapshot(loop, version):
    service, v, blob = _snapshot(loop, version)
    return Response(blob, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{loop}-{v}.model"'})


@bp.post("/v1/loops/<loop>/models")
def upload_model(loop):
    service = loop_service(loop)
    mimetype = (request.content_type or "").split(";")[0].strip().lower()
    if mimetype != "application/octet-stream":
        got = repr(request.content_type) if request.content_type else "none"
        raise UnsupportedMediaType(f"Content-Type must be application/octet-stream, got {got}")
    config = current_app.extensions["cbserve"]["config"]
    blob = read_body(config.max_body_bytes, config.read_timeout)
    if not blob:
        raise BadRequest("body: empty (send the snapshot bytes)")
    reason = parse_reason(request.args.get("reason", ""))
    return jsonify(deploys.upload(service, blob, caller(), reason)), 201


@bp.post("/v1/loops/<loop>/deploy")
def deploy(loop):
    service = loop_service(loop)
    version, learn, force, reason = parse_deploy(json_body())
    return jsonify(deploys.deploy(service, version, learn, force, caller(), reason))


@bp.get("/v1/loops/<loop>/audit")
def audit(loop):
    service = loop_service(loop)
    count = request.args.get("count", "100")
    if not count.isdigit() or not 1 <= int(count) <= MAX_AUDIT:
        raise BadRequest(f"count: must be an integer from 1 to {MAX_AUDIT}, got {count!r}")
    return jsonify({"entries": [_audit_entry(sid, f)
                                for sid, f in service.registry.audit(int(count))]})


def _audit_entry(sid: str, f: dict) -> dict:
    """One audit entry as the API shows it; a promotion (or its refusal) also names the
    challenger and the figures it was judged on."""
    def num(text):
        return int(text) if text.isdigit() else None
    shown = {"id": sid, "time": int(sid.split("-")[0]) / 1000.0, "action": f["action"],
             "key": f["key"], "version": num(f["version"]), "from": num(f["from"]),
             "learn": {"1": True, "0": False}.get(f["learn"]),
             "force": {"1": True, "0": False}.get(f["force"]), "reason": f["reason"]}
    if f.get("figures"):
        judged = json.loads(f["figures"])
        shown["figures"] = judged
        if "challenger" in judged:
            shown["challenger"] = judged["challenger"]
    return shown


def parse_deploy(body: dict) -> tuple:
    """``(version, learn, force, reason)`` of a deploy body; 400 naming the field."""
    allowed = ("version", "learn", "force", "reason")
    for field in body:
        if field not in allowed:
            raise BadRequest(f"{field}: unknown field (allowed: {', '.join(allowed)})")
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BadRequest("version: required, a model version (an integer >= 1)")
    flags = []
    for field, default in (("learn", True), ("force", False)):
        value = body.get(field, default)
        if not isinstance(value, bool):
            raise BadRequest(f"{field}: must be true or false")
        flags.append(value)
    return version, flags[0], flags[1], parse_reason(body.get("reason", ""))


def parse_reason(value) -> str:
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise BadRequest(f"reason: must be a string of at most {MAX_REASON} characters")
    return value
