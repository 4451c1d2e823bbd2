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
                    "vw": {"policy": {"type": "vw"}},
                    "plugin": {"policy": {"type": "tests.bandits.plugin_policy:Favourite"}}}}
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
        assert e["score"] == a["score"] and e["bonus"] > 0   # LinUCB's width (exact in tests/bandits)
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
    body = _rank(client, "plugin", explain=True)
    assert body["explanation"]["actions"] is None
    assert "no exact decomposition" in body["explanation"]["reason"]
    assert body["chosen"] in {a["id"] for a in ACTIONS}


def test_a_vw_decision_is_explained_by_vws_audit(client):
    body = _rank(client, "vw", explain=3)
    why = body["explanation"]
    assert why["method"] == "Vowpal Wabbit's audit"
    assert [e["id"] for e in why["actions"]] == [a["id"] for a in body["ranking"]]
    for e, a in zip(why["actions"], body["ranking"]):
        assert e["probability"]["value"] == pytest.approx(a["probability"])
        assert any(f["kind"] == "interaction" for f in e["features"]) or len(e["features"]) == 3


def test_a_versions_weights_are_named_from_recent_traffic(client, r):
    """Rewards equal to 3 × the context's "spend": its weight leads, named, well
    determined; the VW loop's version has no summary, with the reason."""
    config = parse_config({**CONFIG, "loops": {"lin": {"policy": {"type": "epsilon_greedy", "l2": 0.01},
                                                       "featurizer": {"interaction_dim": 0}}}})
    app = create_app(config, r).test_client()
    for i in range(60):
        spend = float(i % 5)
        out = app.post("/v1/loops/lin/rank", json={"context": {"user": {"spend": spend}, "device": {"os": "ios"}},
                                                    "actions": ["a", "b"], "event_id": f"e{i}"})
        assert out.status_code == 200
        app.post(f"/v1/loops/lin/events/e{i}/reward", json={"value": 3.0 * spend})
    learner = LoopLearner(r, config.loops["lin"], config)
    assert learner.step() == 60 and learner.publish() == 1
    body = call(app, "get", "/v1/loops/lin/models/1/explain?top=3").get_json()
    assert body["policy"] == "epsilon_greedy" and body["summary"]["model"] == "shared"
    first = body["summary"]["global"][0]
    assert [f["name"] for f in first["features"]] == ["user.spend"] and first["kind"] == "context"
    weight = first["features"][0]["weight"]
    assert weight == pytest.approx(3.0, abs=0.05) and first["std"] < weight / 10   # signed
    assert call(app, "get", "/v1/loops/lin/models/1/explain?top=0").status_code == 400
    assert call(app, "get", "/v1/loops/lin/models/9/explain").status_code == 404


def _rewarded_and_published(client, r, loop, n, prefix) -> tuple:
    """n ranks of ``loop`` (event ids ``prefix`` 0..n-1), each rewarded 1, learned and
    published: ``(learned, version)``."""
    for i in range(n):
        _rank(client, loop, event_id=f"{prefix}{i}")
        client.post(f"/v1/loops/{loop}/events/{prefix}{i}/reward", json={"value": 1.0})
    config = parse_config(CONFIG)
    learner = LoopLearner(r, config.loops[loop], config)
    return learner.step(), learner.publish()


def test_a_version_that_cannot_explain_says_why(client, r):
    assert _rewarded_and_published(client, r, "vw", 3, "v")[1] == 1
    body = call(client, "get", "/v1/loops/vw/models/1/explain").get_json()
    assert body["summary"] is None and body["policy"] == "vw" and body["reason"]


def test_the_latest_decision_is_explained_again_by_the_version(client, r):
    assert _rewarded_and_published(client, r, "ucb", 5, "t") == (5, 1)
    body = call(client, "get", "/v1/loops/ucb/models/1/explain").get_json()
    recent = body["recent"]
    assert recent["event_id"] == "t4" and recent["logged_policy"] == {"name": "linucb", "version": 0}
    assert sorted(e["id"] for e in recent["actions"]) == sorted(a["id"] for a in ACTIONS)
    scores = [e["score"] for e in recent["actions"]]
    assert scores == sorted(scores, reverse=True) and all(len(e["features"]) <= 5 for e in recent["actions"])
