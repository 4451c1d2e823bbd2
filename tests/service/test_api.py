"""The HTTP API against a real Redis: rank, reward, activate, loops, health, metrics,
and every route and response checked against the OpenAPI document."""
import json
import re

import jsonschema
import numpy as np
import pytest

from bandits import dsjson, sample_index

from service.api.openapi import document
from service.store import keys

from tests.conftest import RECS_ITEMS

CONTEXT = {"user": {"age": 31, "country": "FR", "tags": ["a", "b"]}, "device": {"os": "ios"}}
DOC = document()


def check_openapi(method: str, path: str, response) -> None:
    """The response's status is documented for this route and its body fits the schema."""
    path = path.partition("?")[0]
    for template, ops in DOC["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method in ops:
            spec = ops[method]["responses"].get(str(response.status_code))
            assert spec, f"{method} {template}: status {response.status_code} undocumented"
            if "application/json" in spec["content"]:
                schema = {**spec["content"]["application/json"]["schema"],
                          "components": DOC["components"]}
                jsonschema.validate(response.get_json(), schema)
            return
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def call(client, method, path, **kwargs):
    response = getattr(client, method)(path, **kwargs)
    check_openapi(method, path, response)
    return response


def test_every_route_is_documented_and_every_documented_route_exists(app):
    routes = {re.sub(r"<([^>]+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static"}
    assert routes == set(DOC["paths"])
    jsonschema.Draft202012Validator.check_schema({"$defs": DOC["components"]["schemas"]})


def test_rank_answers_and_logs_the_same_propensity(client, r):
    res = call(client, "post", "/v1/loops/recs/rank",
               json={"context": CONTEXT, "actions": RECS_ITEMS[:10], "event_id": "ev-1"})
    assert res.status_code == 200
    body = res.get_json()
    assert body["event_id"] == "ev-1"
    assert body["ranking"][0]["id"] == body["chosen"]
    assert {a["id"] for a in body["ranking"]} == {a["id"] for a in RECS_ITEMS[:10]}
    assert sum(a["probability"] for a in body["ranking"]) == pytest.approx(1.0, abs=1e-12)
    rest = [a["score"] for a in body["ranking"][1:]]
    assert rest == sorted(rest, reverse=True)
    (_, fields), = r.xrange(keys.log("recs"))
    event = json.loads(fields[b"j"])
    assert event["EventId"] == "ev-1" and event["p"][0] == body["probability"]
    assert event["ActionIds"][event["a"][0] - 1] == body["chosen"]
    assert sorted(event["a"]) == list(range(1, 11)) and sum(event["p"]) == pytest.approx(1.0)
    assert dsjson.decode(event)[0] == CONTEXT and len(event["c"]["_multi"]) == 10
    assert event["policy"] == {"name": "linucb", "version": 0}


def test_fixed_actions_context_optional_choice_replayable_and_reused_id_refused(client):
    first = call(client, "post", "/v1/loops/hero/rank", json={"event_id": "a1"}).get_json()
    assert first["chosen"] in {"hero-a", "hero-b", "hero-c", "hero-d"}
    assert first["probability"] == pytest.approx(0.25)
    # the draw is a function of (loop seed, event id): the log replays it exactly
    ids = ["hero-a", "hero-b", "hero-c", "hero-d"]
    assert ids[sample_index(np.full(4, 0.25), seed=1, event_id="a1")] == first["chosen"]
    again = call(client, "post", "/v1/loops/hero/rank", json={"event_id": "a1"})
    assert again.status_code == 409
    assert "already in use" in again.get_json()["error"]["message"]


def test_exclude_and_k(client):
    body = call(client, "post", "/v1/loops/hero/rank",
                json={"context": {}, "exclude": ["hero-a", "hero-b"], "k": 1}).get_json()
    assert body["chosen"] in {"hero-c", "hero-d"} and len(body["ranking"]) == 1
    assert body["probability"] == pytest.approx(0.5)


def test_reward_is_idempotent_conflicting_unknown_and_late(client, r):
    eid = call(client, "post", "/v1/loops/recs/rank",
               json={"context": CONTEXT, "actions": RECS_ITEMS[:3]}).get_json()["event_id"]
    url = f"/v1/loops/recs/events/{eid}/reward"
    assert call(client, "post", url, json={"value": 1}).get_json()["status"] == "accepted"
    assert call(client, "post", url, json={"value": 1.0}).get_json()["status"] == "duplicate"
    assert call(client, "post", url, json={"value": 0.5}).status_code == 409
    assert call(client, "post", "/v1/loops/recs/events/nope/reward", json={"value": 1}).status_code == 404
    late = call(client, "post", "/v1/loops/recs/rank",
                json={"context": CONTEXT, "actions": RECS_ITEMS[:3]}).get_json()["event_id"]
    r.hset(keys.event("recs", late), "dl", 0)  # its window closed long ago
    res = call(client, "post", f"/v1/loops/recs/events/{late}/reward", json={"value": 1})
    assert res.status_code == 410 and "window" in res.get_json()["error"]["message"]
    assert r.xlen(keys.joined("recs")) == 1


def test_deferred_event_joins_only_once_activated(client, r):
    eid = call(client, "post", "/v1/loops/hero/rank", json={"defer": True}).get_json()["event_id"]
    assert call(client, "post", f"/v1/loops/hero/events/{eid}/reward", json={"value": 1}).status_code == 200
    assert r.xlen(keys.joined("hero")) == 0
    act = f"/v1/loops/hero/events/{eid}/activate"
    assert call(client, "post", act).get_json()["status"] == "activated"
    assert r.xlen(keys.joined("hero")) == 1
    assert call(client, "post", act).get_json()["status"] == "already_active"
    assert r.xlen(keys.joined("hero")) == 1
    assert call(client, "post", "/v1/loops/hero/events/zzz/activate").status_code == 404


def test_loops_health_metrics(client):
    call(client, "post", "/v1/loops/hero/rank", json={})
    loops = call(client, "get", "/v1/loops").get_json()["loops"]
    assert [lp["name"] for lp in loops] == ["hero", "recs"]
    hero = call(client, "get", "/v1/loops/hero").get_json()
    assert hero["actions"] == ["hero-a", "hero-b", "hero-c", "hero-d"]
    assert hero["counters"]["decisions"] == 1 and hero["model"]["version"] == 0
    assert call(client, "get", "/v1/loops/nope").status_code == 404
    assert call(client, "get", "/healthz").get_json() == {"status": "ok", "redis": True,
                                                          "loops": ["hero", "recs"]}
    text = call(client, "get", "/metrics").get_data(as_text=True)
    assert 'cbserve_decisions_total{loop="hero"} 1.0' in text
    assert 'cbserve_rank_latency_seconds_count{loop="hero"} 1.0' in text
    assert 'cbserve_model_version{loop="recs"} 0.0' in text
    assert 'cbserve_unlearnable_total{loop="hero"} 0.0' in text
    assert call(client, "get", "/openapi.json").get_json()["openapi"].startswith("3.")
    event = client.post("/v1/loops/hero/rank", json={}).get_json()["event_id"]
    assert client.post(f"/v1/loops/hero/events/{event}/reward", json={"value": 2}).status_code == 200
    text = call(client, "get", "/v1/loops/hero").get_data(as_text=True)  # counts are JSON integers
    assert '"decisions":2,' in text and '"rewards":1,' in text and '"reward_sum":2.0' in text


def test_unreachable_redis_is_a_json_503(config):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from service.app import create_app
    dead = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = create_app(config, dead).test_client()
    res = call(client, "post", "/v1/loops/hero/rank", json={})
    assert res.status_code == 503 and res.get_json()["error"]["code"] == "store_unavailable"
    assert call(client, "get", "/healthz").status_code == 503
