"""The OpenAPI 3.1 document of the HTTP API (served at ``/openapi.json``).

Tests check every route of the app against it and validate every response body they
see with its schema, so the document cannot drift from the code.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .openapi_schemas import SCHEMAS, _ref


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses):
    text = {400: "Invalid request (the message names the field)",
            401: "No API key, or an unknown one", 403: "The key's loops or role do not cover this route",
            404: "Unknown loop, event, session or model version",
            409: "Conflict (reused event id, a different reward, a session step raced, or a "
                 "deploy of a version that never served without force)", 410: "Reward window closed",
            408: "Body not received within service.read_timeout",
            413: "Body over service.max_body_bytes", 415: "Body of another Content-Type than the route's",
            422: "Over a configured limit (actions, features, string length, depth), a "
                 "snapshot the loop's policy cannot load, or a failed pre-deployment check",
            503: "Redis unavailable"}
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


_LOOP = {"name": "loop", "in": "path", "required": True, "schema": {"type": "string"}}
_EVENT = {"name": "event_id", "in": "path", "required": True,
          "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}}
_SESSION = {"name": "session_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}}
_VERSION = {"name": "version", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}

SECURITY = {"bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}

PATHS = {
    "/v1/loops/{loop}/rank": {"post": {
        "summary": "Choose and rank actions; the decision is logged before the answer",
        "parameters": [_LOOP, {"name": "explain", "in": "query", "required": False,
                               "schema": {"enum": ["0", "1", "false", "true"]},
                               "description": "1: explain each returned action (as explain: true)"}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("RankRequest")}}},
        "responses": {"200": _json(_ref("RankResponse"), "The decision"),
                      **_errors(401, 403, 400, 404, 408, 409, 413, 415, 422, 503)}}},
    "/v1/loops/{loop}/events/{event_id}/reward": {"post": {
        "summary": "Reward a decision; idempotent for the same value",
        "parameters": [_LOOP, _EVENT],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("RewardRequest")}}},
        "responses": {"200": _json(_ref("RewardResponse"), "Reward recorded (or repeated)"),
                      **_errors(401, 403, 400, 404, 408, 409, 410, 413, 415, 503)}}},
    "/v1/loops/{loop}/events/{event_id}/activate": {"post": {
        "summary": "Make a deferred decision learnable",
        "parameters": [_LOOP, _EVENT],
        "responses": {"200": _json(_ref("ActivateResponse"), "Activated (or already active)"),
                      **_errors(401, 403, 400, 404, 410, 503)}}},
    "/v1/loops/{loop}/sessions/{session_id}/end": {"post": {
        "summary": "End a session's episode (sequential loops); its next step starts a new one",
        "parameters": [_LOOP, _SESSION],
        "responses": {"200": _json(_ref("EndResponse"), "Ended (or already ended)"),
                      **_errors(401, 403, 400, 404, 408, 413, 415, 503)}}},
    "/v1/loops": {"get": {"summary": "Every loop: configuration, model version, counters",
                          "responses": {"200": _json(_ref("Loops"), "The loops"), **_errors(401, 403, 503)}}},
    "/v1/loops/{loop}": {"get": {"summary": "One loop", "parameters": [_LOOP],
                                 "responses": {"200": _json(_ref("Loop"), "The loop"),
                                               **_errors(401, 403, 404, 503)}}},
    "/v1/loops/{loop}/models": {
        "get": {"summary": "The loop's model registry and serving pointer (admin)", "parameters": [_LOOP],
                "responses": {"200": _json(_ref("Models"), "The registry"), **_errors(401, 403, 404, 503)}},
        "post": {"summary": "Register an uploaded snapshot as a version that never served (admin)",
                 "parameters": [_LOOP, {"name": "reason", "in": "query", "required": False,
                                        "schema": {"type": "string", "maxLength": 1024}}],
                 "requestBody": {"required": True, "content": {"application/octet-stream": {
                     "schema": {"type": "string", "format": "binary"}}}},
                 "responses": {"201": _json(_ref("ModelVersion"), "Registered"),
                               **_errors(401, 403, 400, 404, 408, 413, 415, 422, 503)}}},
    "/v1/loops/{loop}/models/{version}": {"get": {
        "summary": "One model version (admin)", "parameters": [_LOOP, _VERSION],
        "responses": {"200": _json(_ref("ModelVersion"), "The version"), **_errors(401, 403, 404, 503)}}},
    "/v1/loops/{loop}/models/{version}/explain": {"get": {
        "summary": "A version's largest weights with the feature names seen in their buckets",
        "parameters": [_LOOP, _VERSION,
                       {"name": "top", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "description": "weights listed (default 20)"},
                       {"name": "decisions", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 20000},
                        "description": "recent decisions read for the names (default 500)"}],
        "responses": {"200": _json(_ref("ModelExplanation"), "The summary (null: the policy has none)"),
                      **_errors(401, 403, 400, 404, 503)}}},
    "/v1/loops/{loop}/models/{version}/snapshot": {"get": {
        "summary": "One version's snapshot bytes (admin)", "parameters": [_LOOP, _VERSION],
        "responses": {"200": {"description": "The snapshot", "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}, **_errors(401, 403, 404, 503)}}},
    "/v1/loops/{loop}/deploy": {"post": {
        "summary": "Serve a version: deploy, roll back, pin (learn: false) or resume (admin)",
        "parameters": [_LOOP],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("DeployRequest")}}},
        "responses": {"200": _json(_ref("DeployResponse"), "Every worker serves it within a second"),
                      **_errors(401, 403, 400, 404, 408, 409, 413, 415, 422, 503)}}},
    "/v1/loops/{loop}/audit": {"get": {
        "summary": "Deploys, pins, refusals and uploads of the loop, newest first (admin)",
        "parameters": [_LOOP, {"name": "count", "in": "query", "required": False,
                               "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
        "responses": {"200": _json(_ref("Audit"), "The audit entries"), **_errors(401, 403, 400, 404, 503)}}},
    "/v1/loops/{loop}/challengers": {"get": {
        "summary": "The challengers' live off-policy figures, verdicts and gate (admin)",
        "parameters": [_LOOP],
        "responses": {"200": _json(_ref("Challengers"), "The challengers"),
                      **_errors(401, 403, 404, 503)}}},
    "/v1/loops/{loop}/promote": {"post": {
        "summary": "Promote a challenger through the gate: it serves and the loop learns on "
                   "from it (admin)",
        "parameters": [_LOOP],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PromoteRequest")}}},
        "responses": {"200": _json(_ref("PromoteResponse"), "Promoted; every worker serves it "
                                   "within a second"),
                      **_errors(401, 403, 400, 404, 408, 409, 413, 415, 422, 503)}}},
    "/v1/loops/{loop}/health": {"get": {
        "summary": "The loop's health over a window: figures, series, status and its reasons (admin)",
        "parameters": [_LOOP, {"name": "window", "in": "query", "required": False, "schema": {
            "type": "string", "pattern": "^[1-9][0-9]{0,6}[mhd]$", "default": "1h"},
            "description": "minutes, hours or days, at most health.retention"}],
        "responses": {"200": _json(_ref("LoopHealth"), "The loop's health"),
                      **_errors(401, 403, 400, 404, 503)}}},
    "/healthz": {"get": {"summary": "Liveness and Redis reachability (no key needed)", "security": [], "responses": {
        "200": _json(_ref("Health"), "Healthy"), "503": _json(_ref("Health"), "Redis unreachable")}}},
    "/metrics": {"get": {"summary": "Prometheus metrics of the key's loops (admin)", "responses": {"200": {
        "description": "Prometheus text format 0.0.4",
        "content": {"text/plain": {"schema": {"type": "string"}}}}, **_errors(401, 403)}}},
    "/openapi.json": {"get": {"summary": "This document (any valid key)", "responses": {"200": {
        "description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}},
        **_errors(401)}}},
    "/dashboard": {"get": {"summary": "The loop-health page (no key needed: it asks for an admin "
                                      "key and calls this API with it)", "security": [],
                           "responses": {"200": {"description": "HTML", "content": {
                               "text/html": {"schema": {"type": "string"}}}}}}},
    "/dashboard/{asset}": {"get": {
        "summary": "The page's scripts and styles (no key needed)", "security": [],
        "parameters": [{"name": "asset", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}],
        "responses": {"200": {"description": "A script or a style sheet", "content": {
            "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}},
            **_errors(404)}}},
}


def document() -> dict:
    """The OpenAPI document."""
    try:
        v = version("cbserve")
    except PackageNotFoundError:
        v = "0"
    return {"openapi": "3.1.0",
            "info": {"title": "cbserve", "version": v,
                     "description": "Contextual-bandit decisions: rank, reward, learn, deploy."},
            "paths": PATHS, "security": [{"bearer": []}, {"apiKey": []}],
            "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY}}
