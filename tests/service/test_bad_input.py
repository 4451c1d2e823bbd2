"""Bad input table: every case is a 4xx JSON error naming the problem, never a 5xx,
and nothing already accepted is lost."""
import json

import pytest

from service.store import keys

from tests.conftest import RECS_ITEMS
from .test_api import check_openapi

GOOD = {"context": {"user": {"age": 31}}, "actions": RECS_ITEMS[:3]}
RANK = "/v1/loops/recs/rank"


def _raw(text, content_type="application/json"):
    return {"data": text, "content_type": content_type}


CASES = [
    # (name, path, request kwargs, status, text expected in the message)
    ("malformed JSON", RANK, _raw('{"context": '), 400, "not valid JSON"),
    ("not an object", RANK, _raw("[1, 2]"), 400, "body must be a JSON object, got a list"),
    ("null body", RANK, _raw("null"), 400, "body must be a JSON object, got null"),
    ("NaN", RANK, _raw('{"context": {"u": {"x": NaN}}, "actions": ["a"]}'), 400, "NaN"),
    ("Infinity", RANK, _raw('{"context": {"u": {"x": Infinity}}, "actions": ["a"]}'), 400, "Infinity"),
    ("float overflow", RANK, _raw('{"context": {"u": {"x": 1e999}}, "actions": ["a"]}'), 400, "1e999"),
    ("huge integer", RANK, {"json": {"context": {"u": {"x": 10 ** 400}}, "actions": ["a"]}}, 400, "infinity"),
    ("feature too large to learn from", RANK, {"json": {"context": {"u": {"x": 1e299}}, "actions": ["a"]}},
     400, "context.u.x: must be a finite number of magnitude at most 1e+15"),
    ("action feature too large", RANK, {"json": {"actions": [{"id": "a", "features": {"i": {"p": -1e16}}}]}},
     400, "actions[0].features.i.p: must be a finite number of magnitude at most 1e+15"),
    ("wrong content type", RANK, _raw(json.dumps(GOOD), "text/plain"), 415,
     "Content-Type must be application/json, got 'text/plain'"),
    ("no body", RANK, {}, 415, "Content-Type must be application/json, got none"),
    ("extra field", RANK, {"json": {**GOOD, "foo": 1}}, 400, "foo: unknown field"),
    ("missing actions", RANK, {"json": {"context": {}}}, 400, "actions: required"),
    ("actions not a list", RANK, {"json": {"actions": {"id": "a"}}}, 400, "actions: must be a non-empty list"),
    ("empty actions", RANK, {"json": {"actions": []}}, 400, "actions: must be a non-empty list"),
    ("empty action id", RANK, {"json": {"actions": [{"id": ""}]}}, 400, "actions[0].id"),
    ("numeric action id", RANK, {"json": {"actions": [{"id": 7}]}}, 400, "actions[0].id"),
    ("misspelt features of an action", RANK,
     {"json": {"actions": [{"id": "a", "feature": {"item": {"price": 1.0}}}, "b"]}}, 400,
     "actions[0].feature: unknown key (allowed: id, features)"),
    ("unknown key beside an action's features", RANK,
     {"json": {"actions": [RECS_ITEMS[0], {**RECS_ITEMS[1], "weight": 2}]}}, 400,
     "actions[1].weight: unknown key (allowed: id, features)"),
    ("misspelt features of a fixed loop's action", "/v1/loops/hero/rank",
     {"json": {"actions": [{"id": "hero-a", "feature": {"banner": {"colour": "red"}}}]}}, 400,
     "actions[0].feature: unknown key (allowed: id, features)"),
    ("duplicate ids", RANK, {"json": {"actions": ["a", "b", "a"]}}, 400, "duplicate action id 'a'"),
    ("10,000 actions", RANK, {"json": {"actions": [f"a{i}" for i in range(10_000)]}}, 422,
     "actions: 10000 actions exceed service.max_actions = 1000"),
    ("context not an object", RANK, {"json": {"context": [1], "actions": ["a"]}}, 400, "context"),
    ("mistyped feature", RANK, {"json": {"context": {"u": {"x": {"deep": 1}}}, "actions": ["a"]}},
     400, "context.u.x: must be a number, a string, a list of strings or of numbers, or null, "
          "got an object"),
    ("mistyped defer", RANK, {"json": {**GOOD, "defer": "yes"}}, 400, "defer"),
    ("mistyped k", RANK, {"json": {**GOOD, "k": 0}}, 400, "k: must be an integer"),
    ("mistyped exclude", RANK, {"json": {**GOOD, "exclude": "a"}}, 400, "exclude"),
    ("everything excluded", RANK, {"json": {"actions": ["a"], "exclude": ["a"]}}, 400, "every action"),
    ("bad event id", RANK, {"json": {**GOOD, "event_id": "has space"}}, 400, "event_id"),
    ("huge event id", RANK, {"json": {**GOOD, "event_id": "x" * 10_000}}, 400, "event_id"),
    ("huge body", RANK, {"json": {**GOOD, "context": {"u": {"s": "x" * 2_000_000}}}}, 413, "exceeds"),
    ("unknown loop", "/v1/loops/nope/rank", {"json": GOOD}, 404, "unknown loop 'nope'"),
    ("action outside a fixed loop's", "/v1/loops/hero/rank", {"json": {"actions": ["hero-b", "new-1"]}}, 400,
     "actions[1].id: 'new-1' is not an action of loop 'hero' (its actions: hero-a, hero-b, hero-c, hero-d)"),
    ("reward missing value", "/v1/loops/recs/events/e1/reward", {"json": {}}, 400, "value: required"),
    ("reward not a number", "/v1/loops/recs/events/e1/reward", {"json": {"value": "1"}}, 400,
     "value: must be a finite number of magnitude at most 1e+15, got the string '1'"),
    ("reward boolean", "/v1/loops/recs/events/e1/reward", {"json": {"value": True}}, 400,
     "value: must be a finite number of magnitude at most 1e+15, got the boolean true"),
    ("reward NaN", "/v1/loops/recs/events/e1/reward", _raw('{"value": NaN}'), 400, "NaN"),
    ("reward huge", "/v1/loops/recs/events/e1/reward", {"json": {"value": 10 ** 400}}, 400, "infinity"),
    ("reward too large to learn from", "/v1/loops/recs/events/e1/reward", {"json": {"value": 1e299}}, 400,
     "value: must be a finite number of magnitude at most 1e+15, got 1e+299"),
    ("reward null", "/v1/loops/recs/events/e1/reward", {"json": {"value": None}}, 400,
     "value: must be a finite number of magnitude at most 1e+15, got null"),
    ("reward list", "/v1/loops/recs/events/e1/reward", {"json": {"value": [1]}}, 400,
     "value: must be a finite number of magnitude at most 1e+15, got a list"),
    ("reward extra field", "/v1/loops/recs/events/e1/reward", {"json": {"value": 1, "x": 2}}, 400, "x: unknown"),
    ("reward unknown event", "/v1/loops/recs/events/e1/reward", {"json": {"value": 1}}, 404, "no event 'e1'"),
    ("reward text/plain", "/v1/loops/recs/events/e1/reward", _raw('{"value": 1}', "text/plain"), 415, "Content-Type"),
]


@pytest.mark.parametrize("name,path,kwargs,status,text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_json_4xx_naming_the_problem(client, r, name, path, kwargs, status, text):
    accepted = client.post(RANK, json={**GOOD, "event_id": "kept"})
    assert accepted.status_code == 200
    res = client.post(path, **kwargs)
    assert res.status_code == status, res.get_data(as_text=True)[:300]
    message = res.get_json()["error"]["message"]
    assert text in message
    if path.startswith("/v1/loops/recs") or path.startswith("/v1/loops/nope"):
        check_openapi("post", path, res)
    # nothing already accepted is lost
    assert r.xlen(keys.log("recs")) == 1 and r.exists(keys.event("recs", "kept"))


def test_unknown_route_and_method_are_json(client):
    res = client.get("/v1/nothing")
    assert res.status_code == 404 and res.get_json()["error"]["code"] == "not_found"
    res = client.get(RANK)
    assert res.status_code == 405 and "error" in res.get_json()


def test_a_fixed_loop_takes_its_own_actions_with_request_features(client):
    res = client.post("/v1/loops/hero/rank", json={"actions": [
        {"id": "hero-c", "features": {"banner": {"colour": "red"}}}, "hero-a"]})
    assert res.status_code == 200 and res.get_json()["chosen"] in ("hero-a", "hero-c")
