"""``"explain": true`` on a rank, through the HTTP API: each returned action's estimate,
bonus and probability decomposed exactly; a policy that cannot explain still decides."""
import time

import pytest

from service.app import create_app
from service.config import parse_config
from service.learner import LoopLearner
from service.models import REFRESH_S

from .test_api import call

CONFIG = {"service": {"allow_anonymous": True},
          "loops": {"ucb": {"policy": {"type": "linucb", "alpha": 0.5, "epsilon": 0.1}},
                    "vw": {"policy": {"type": "vw"}}}}
ACTIONS = [{"id": f"i{i}", "features": {"item": {"price": float(i), "genre": "ab"[i % 2]}}} for i in range(5)]
CONTEXT = {"user": {"country": "FR", "age": 30.0, "tags": ["x", "y"]}}


@pytest.fixture
def client(r):
    return create_app(parse_config(CONFIG), r).test_client()


def _rank(client, loop, query="", **body):
    out = call(client, "post", f"/v1/loops/{loop}/rank{query}",
               json={"context": CONTEXT, "actions": ACTIONS, **body})
    assert out.status_code == 200, out.get_json()
    return out.get_json()


def test_each_returned_action_is_explained_exactly_in_ranking_order(client, r):
    for i in range(30):   # a model that has learned something
        body = _rank(client, "ucb", event_id=f"t{i}")
        client.post(f"/v1/loops/ucb/events/t{i}/reward", json={"value": float(i % 3)})
    config = parse_config(CONFIG)
    learner = LoopLearner(r, config.loops["ucb"], config)
    assert learner.step() == 30 and learner.publish() == 1
    time.sleep(REFRESH_S + 0.1)
    body = _rank(client, "ucb", explain=4, k=3)
    assert body["model"]["version"] == 1
    why = body["explanation"]["actions"]
    assert any(f["weight"] != 0.0 for e in why for f in e["features"])
    assert [e["id"] for e in why] == [a["id"] for a in body["ranking"]]
    for e, a in zip(why, body["ranking"]):
        assert len(e["features"]) <= 4
        total = e["intercept"] + sum(f["contribution"] for f in e["features"]) + e["rest"]
        assert total == pytest.approx(e["mean"], abs=1e-9)
        assert e["mean"] + e["bonus"] == pytest.approx(a["score"], abs=1e-9)
        p = e["probability"]
        assert p["greedy"] + p["epsilon_floor"] == pytest.approx(a["probability"], abs=1e-9)


def test_the_query_parameter_asks_for_it_too_and_without_it_nothing_is_added(client):
    assert "explanation" in _rank(client, "ucb", query="?explain=1")
    assert "explanation" not in _rank(client, "ucb")
    out = call(client, "post", "/v1/loops/ucb/rank?explain=maybe", json={"actions": ACTIONS})
    assert out.status_code == 400 and out.get_json()["error"]["message"].startswith("explain:")
    out = call(client, "post", "/v1/loops/ucb/rank", json={"actions": ACTIONS, "explain": 0})
    assert out.status_code == 400


def test_a_policy_that_cannot_explain_still_decides(client):
    body = _rank(client, "vw", explain=True)
    assert body["explanation"]["actions"] is None
    assert "no exact decomposition" in body["explanation"]["reason"]
    assert body["chosen"] in {a["id"] for a in ACTIONS}
