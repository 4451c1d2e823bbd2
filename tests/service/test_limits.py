"""Input limits: each is configurable, exactly at the limit passes, one over is a 413/422
naming the limit and the path; the fast path and the full walk agree."""
import random

import pytest

from service.api.limits import _common_ok, _walk, check_rank_body
from service.app import create_app
from service.config import Limits, parse_config
from service.errors import ConfigError, LimitExceeded
from service.store import keys

from tests.conftest import make_config
from .test_api import check_openapi

LIMITS = {"max_actions": 5, "max_features": 4, "max_string_length": 128, "max_depth": 6,
          "max_body_bytes": 2048}
RANK = "/v1/loops/recs/rank"
ITEM = {"id": "i0", "features": {"item": {"price": 1.0}}}


def _actions(n):
    return [{"id": f"i{j}", "features": {"item": {"price": float(j)}}} for j in range(n)]


def _body(context=None, actions=None):
    return {"context": context or {"user": {"age": 31}}, "actions": actions or _actions(2)}


# (name, body, status, message) - one over each limit; the message is matched exactly.
OVER = [
    ("actions", _body(actions=_actions(6)), 422,
     "actions: 6 actions exceed service.max_actions = 5"),
    ("features per context namespace", _body({"user": {f"f{j}": 1 for j in range(5)}}), 422,
     "context.user: 5 entries exceed service.max_features = 4"),
    ("features per action namespace",
     _body(actions=[ITEM, {"id": "i1", "features": {"item": {f"f{j}": 1 for j in range(5)}}}]), 422,
     "actions[1].features.item: 5 entries exceed service.max_features = 4"),
    ("namespaces", _body({f"ns{j}": {"x": 1} for j in range(5)}), 422,
     "context: 5 entries exceed service.max_features = 4"),
    ("items of a bag", _body({"user": {"tags": ["a", "b", "c", "d", "e"]}}), 422,
     "context.user.tags: 5 items exceed service.max_features = 4"),
    ("items of an embedding", _body({"user": {"emb": [0.5] * 5}}), 422,
     "context.user.emb: 5 items exceed service.max_features = 4"),
    ("string value", _body({"user": {"bio": "x" * 129}}), 422,
     "context.user.bio: string of 129 characters exceeds service.max_string_length = 128"),
    ("string in a bag", _body({"user": {"tags": ["a", "é" * 129]}}), 422,
     "context.user.tags[1]: string of 129 characters exceeds service.max_string_length = 128"),
    ("feature name", _body({"user": {"n" * 129: 1}}), 422,
     f"context.user.{'n' * 32}...: name of 129 characters exceeds service.max_string_length = 128"),
    ("action id", _body(actions=[ITEM, {"id": "a" * 129}]), 422,
     "actions[1].id: string of 129 characters exceeds service.max_string_length = 128"),
    ("bare action id", _body(actions=["a", "b" * 129]), 422,
     "actions[1]: string of 129 characters exceeds service.max_string_length = 128"),
    ("excluded ids", {**_body(), "exclude": [f"x{j}" for j in range(5)]}, 422,
     "exclude: 5 items exceed service.max_features = 4"),
    ("excluded id length", {**_body(), "exclude": ["x" * 129]}, 422,
     "exclude[0]: string of 129 characters exceeds service.max_string_length = 128"),
    ("unknown key of an action", _body(actions=[ITEM, {"id": "i1", "k" * 129: 1}]), 422,
     f"actions[1].{'k' * 32}...: name of 129 characters exceeds service.max_string_length = 128"),
    ("nesting", _body({"user": {"age": 1}, "_meta": {"a": {"b": {"c": {"d": {"e": 1}}}}}}), 422,
     "context._meta.a.b.c.d: nesting deeper than service.max_depth = 6"),
    ("body bytes", _body({"user": {f"f{j}": "x" * 120 for j in range(4)}},
                         [{"id": f"i{j}", "features": {"item": {f"s{k}": "y" * 120 for k in range(4)}}}
                          for j in range(5)]),
     413, "body exceeds service.max_body_bytes = 2048"),
]

# Bodies exactly at every limit: served.
AT = [
    ("5 actions", _body(actions=_actions(5))),
    ("4 features, 4 namespaces, bag of 4",
     _body({"user": {"a": 1, "b": 2, "c": 3, "tags": ["w", "x", "y", "z"]},
            "geo": {"c": "FR"}, "dev": {"m": 1}, "t": {"h": 3}})),
    ("128-character strings", _body({"user": {"n" * 128: "v" * 128}},
                                    [ITEM, {"id": "a" * 128, "features": {}}])),
    ("depth 6 (an action's bag)", _body(actions=[{"id": "i0", "features": {"item": {"tags": ["a"]}}}])),
]


@pytest.fixture
def limited(r):
    return create_app(make_config(**LIMITS), r).test_client()


@pytest.mark.parametrize("name,body,status,message", OVER, ids=[c[0] for c in OVER])
def test_one_over_a_limit_is_refused_naming_it(limited, r, name, body, status, message):
    assert limited.post(RANK, json={**_body(), "event_id": "kept"}).status_code == 200
    res = limited.post(RANK, json=body)
    assert res.status_code == status, res.get_data(as_text=True)[:300]
    error = res.get_json()["error"]
    assert error["message"] == message
    assert error["code"] == ("limit_exceeded" if status == 422 else "request_entity_too_large")
    check_openapi("post", RANK, res)
    assert r.xlen(keys.log("recs")) == 1  # the accepted decision is still there, nothing else


@pytest.mark.parametrize("name,body", AT, ids=[c[0] for c in AT])
def test_exactly_at_the_limits_is_served(limited, name, body):
    res = limited.post(RANK, json=body)
    assert res.status_code == 200, res.get_data(as_text=True)[:300]


def test_defaults_are_generous_for_real_requests_and_named_in_errors(client):
    wide = _body({"user": {f"f{j}": j for j in range(1000)}}, _actions(1000))
    assert client.post(RANK, json=wide).status_code == 200
    res = client.post(RANK, json=_body({"user": {"bio": "x" * 1025}}))
    assert res.status_code == 422
    assert "service.max_string_length = 1024" in res.get_json()["error"]["message"]


@pytest.mark.parametrize("key,value,problem", [
    ("max_string_length", 127, "must be an integer >= 128"),
    ("max_depth", 1, "must be an integer >= 2"),
    ("max_features", 0, "must be an integer >= 1"),
])
def test_bad_limit_values_name_the_key(key, value, problem):
    with pytest.raises(ConfigError, match=f"service.{key}: {problem}"):
        parse_config({"service": {key: value}, "loops": {"a": {"actions": ["x", "y"]}}})


def _random_value(rng, depth):
    roll = rng.random()
    if depth < 7 and roll < 0.15:
        return {rng.choice(["a", "b", "_m", "x" * rng.choice([5, 130])]): _random_value(rng, depth + 1)
                for _ in range(rng.randint(0, 6))}
    if depth < 7 and roll < 0.3:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    return rng.choice([1, 2.5, None, True, "s", "y" * 130, "é" * 128])


def test_fast_path_never_passes_a_body_the_full_walk_refuses():
    """Random bodies around the limits: when the fast path says "within limits", the
    exhaustive walk agrees; and it says so for most well-formed bodies."""
    rng = random.Random(5)
    limits = Limits(**{k: v for k, v in LIMITS.items()})
    fast = total_within = 0
    for _ in range(3000):
        body = {"context": {f"ns{j}": rng.choice([{"a": _random_value(rng, 4), "b": 1.5},
                                                   _random_value(rng, 3)])
                            for j in range(rng.randint(0, 5))},
                "actions": [rng.choice([f"a{j}", {"id": f"a{j}", "features": {
                    "item": _random_value(rng, 5)}}] * 4 + [{"id": f"a{j}", "x" * 130: 1}])
                            for j in range(rng.randint(1, 5))],
                "exclude": rng.choice([[]] * 7 + [["a0"], ["y" * 130], ["z"] * 6])}
        try:
            _walk(body, 1, limits, top=True)
            within = True
        except Exception:
            within = False
        total_within += within
        if _common_ok(body, limits):
            fast += 1
            assert within, body
        if not within:
            with pytest.raises(LimitExceeded):
                check_rank_body(body, limits)
    assert fast > 50 and total_within > 500  # both branches well exercised (98, 576 of 3000)
