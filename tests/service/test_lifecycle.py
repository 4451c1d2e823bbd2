"""The model registry against a real Redis: versions the learner publishes, the serving
pointer, deploy, roll back, pin and resume, uploads, the audit stream, and every
response checked against the OpenAPI document."""
import dataclasses
import threading

import numpy as np
import pytest

from bandits import load_policy, make_policy
from service.api.auth import parse_key
from service.app import create_app
from service.config import parse_config
from service.learner import LoopLearner
from service.store import keys

from .test_api import call
from .test_learner import _traffic

ADMIN, DECIDE = "admin-key-0123456789", "decide-key-0123456789"
KEYS = [parse_key({"key": ADMIN, "role": "admin", "name": "ops"}, "k0", False),
        parse_key({"key": DECIDE, "role": "decide", "name": "web"}, "k1", False)]
AS_ADMIN = {"X-API-Key": ADMIN}


@pytest.fixture
def app(config, r):
    return create_app(config, r, keys=KEYS)


@pytest.fixture
def client(app):
    return app.test_client()


def _get(client, path, **kw):
    return call(client, "get", path, headers=AS_ADMIN, **kw)


def _deploy(client, body, key=ADMIN):
    return call(client, "post", "/v1/loops/recs/deploy", json=body, headers={"X-API-Key": key})


class Traffic:
    """Decisions and rewards through the app, learned by a learner of the loop."""

    def __init__(self, client, config, r):
        self.client, self.rng = client, np.random.default_rng(5)
        self.learner = LoopLearner(r, config.loops["recs"], config)

    def learn(self, n=10) -> int:
        """``n`` rewarded decisions, learned and published; the learner's version after.
        Two rounds, as the learner's loop runs them: a publication refused because a
        deploy moved the head reloads it, and the next round learns the events again."""
        with _keyed(self.client):
            _traffic(self.client, n, self.rng)
        for _ in range(2):
            while self.learner.step():
                pass
            version = self.learner.publish()
        return version


class _keyed:
    """Send the admin key with every request of the test client (ranks included)."""

    def __init__(self, client):
        self.client = client

    def __enter__(self):
        self.client.environ_base["HTTP_X_API_KEY"] = ADMIN

    def __exit__(self, *exc):
        del self.client.environ_base["HTTP_X_API_KEY"]


@pytest.fixture
def traffic(client, config, r):
    return Traffic(client, config, r)


def _serving(client):
    """The version a rank is answered with now (the worker checks its pointer now, not
    within its 0.5 s)."""
    client.application.extensions["cbserve"]["loops"]["recs"].model._checked = float("-inf")
    with _keyed(client):
        res = client.post("/v1/loops/recs/rank", json={"actions": ["a", "b"]}).get_json()
    return res["model"]["version"]


def test_every_publication_is_a_version_with_its_parent_and_the_pointer_follows(client, traffic, r):
    assert traffic.learn() == 1 and traffic.learn() == 2
    body = _get(client, "/v1/loops/recs/models").get_json()
    assert body["serving"] == 2 and body["learning"] is True
    first, second = body["models"]
    assert (first["version"], first["parent"], first["source"]) == (1, None, "learner")
    assert (second["parent"], second["events_learned"]) == (1, 20)
    assert second["serving"] and first["served"] and not first["serving"]
    assert second["policy"]["name"] == "linucb" and second["policy"]["params"]["alpha"] == 0.5
    assert _get(client, "/v1/loops/recs/models/1").get_json() == first
    snap = _get(client, "/v1/loops/recs/models/1/snapshot")
    assert snap.status_code == 200 and snap.data == r.get(keys.model_version("recs", 1))
    load_policy(snap.data)
    loop = _get(client, "/v1/loops/recs").get_json()
    assert (loop["serving_version"], loop["learning"]) == (2, True)


def test_roll_back_serves_the_old_version_and_the_learner_continues_from_it(client, traffic):
    for _ in range(3):
        traffic.learn()
    res = _deploy(client, {"version": 1, "learn": True, "reason": "v3 clicks fell"})
    assert res.status_code == 200
    assert res.get_json() == {"serving": 1, "previous": 3, "learning": True}
    assert _serving(client) == 1
    assert traffic.learn() == 4
    four = _get(client, "/v1/loops/recs/models/4").get_json()
    assert four["parent"] == 1 and four["events_learned"] == 20  # v1's 10 and 10 new
    assert _serving(client) == 4
    assert {m["version"] for m in _get(client, "/v1/loops/recs/models").get_json()["models"]} == {1, 2, 3, 4}
    entry = _get(client, "/v1/loops/recs/audit").get_json()["entries"][0]
    assert entry["action"] == "deploy" and entry["key"] == "ops" and entry["version"] == 1
    assert (entry["from"], entry["learn"], entry["reason"]) == (3, True, "v3 clicks fell")


def test_a_pinned_loop_serves_its_version_and_learns_nothing_until_resumed(client, traffic, r):
    traffic.learn()
    traffic.learn()
    assert _deploy(client, {"version": 1, "learn": False}).status_code == 200
    assert traffic.learn() == 2  # nothing published: the learner's version is unchanged
    body = _get(client, "/v1/loops/recs/models").get_json()
    assert (body["serving"], body["learning"], len(body["models"])) == (1, False, 2)
    assert _serving(client) == 1
    assert int(r.hget(keys.stats("recs"), "not_learned")) == 10
    assert r.xpending(keys.joined("recs"), keys.LEARNER_GROUP)["pending"] == 0
    assert _get(client, "/v1/loops/recs").get_json()["learning"] is False
    assert _deploy(client, {"version": 2, "learn": True}).status_code == 200
    assert traffic.learn() == 3
    three = _get(client, "/v1/loops/recs/models/3").get_json()
    assert three["parent"] == 2 and three["events_learned"] == 30  # the pinned 10 are not in it
    actions = [e["action"] for e in _get(client, "/v1/loops/recs/audit").get_json()["entries"]]
    assert actions == ["deploy", "pin"]


def test_an_upload_never_serves_until_deployed_with_force(client, traffic):
    traffic.learn()
    blob = make_policy({"type": "linucb", "alpha": 0.5, "epsilon": 0.05}).to_bytes()
    res = call(client, "post", "/v1/loops/recs/models", query_string={"reason": "warm start"}, data=blob,
               headers={**AS_ADMIN, "Content-Type": "application/octet-stream"})
    assert res.status_code == 201
    up = res.get_json()
    assert (up["version"], up["source"], up["served"], up["serving"]) == (2, "upload", False, False)
    refused = _deploy(client, {"version": 2})
    assert refused.status_code == 409
    assert "a version that never served needs force: true" in refused.get_json()["error"]["message"]
    assert "the gate" in refused.get_json()["error"]["message"]
    assert _serving(client) == 1
    assert _deploy(client, {"version": 2, "force": True, "reason": "trained offline"}).status_code == 200
    assert _serving(client) == 2
    assert traffic.learn() == 3  # the learner continues from the upload
    assert _get(client, "/v1/loops/recs/models/3").get_json()["parent"] == 2
    audit = _get(client, "/v1/loops/recs/audit").get_json()["entries"]
    assert [(e["action"], e["version"], e["force"]) for e in audit] == [
        ("deploy", 2, True), ("refused", 2, False), ("upload", 2, None)]
    assert audit[2]["reason"] == "warm start"


def test_a_failing_pre_deployment_check_refuses_even_a_forced_deploy(client, traffic, r, config):
    traffic.learn()
    slow = create_app(dataclasses.replace(config, models_check_latency=1e-9), r, keys=KEYS).test_client()
    blob = make_policy({"type": "linucb", "alpha": 0.5, "epsilon": 0.05}).to_bytes()
    up = call(slow, "post", "/v1/loops/recs/models", data=blob,
              headers={**AS_ADMIN, "Content-Type": "application/octet-stream"}).get_json()
    assert up["checks"]["passed"] is False
    assert [c["name"] for c in up["checks"]["checks"] if c["passed"] is False] == ["latency"]
    refused = call(slow, "post", "/v1/loops/recs/deploy", json={"version": up["version"], "force": True},
                   headers=AS_ADMIN)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["message"].startswith(
        f"version {up['version']} of loop 'recs': the pre-deployment check 'latency' failed")
    assert _serving(client) == 1
    entry = _get(client, "/v1/loops/recs/audit").get_json()["entries"][0]
    assert (entry["action"], entry["version"]) == ("refused", up["version"])
    assert entry["reason"].startswith("check latency failed")
    assert _deploy(client, {"version": up["version"], "force": True}).status_code == 200  # 1 s budget
    assert _serving(client) == up["version"]


@pytest.mark.parametrize("blob, content_type, status, match", [
    (b"not a snapshot", "application/octet-stream", 422, "snapshot: "),
    (make_policy({"type": "epsilon_greedy"}).to_bytes(), "application/octet-stream", 422,
     "'epsilon_greedy' policy, not 'linucb'"),
    (b"x", "application/json", 415, "application/octet-stream"),
    (b"", "application/octet-stream", 400, "body: empty"),
])
def test_bad_uploads_are_refused_naming_the_problem(client, blob, content_type, status, match):
    res = call(client, "post", "/v1/loops/recs/models", data=blob,
               headers={**AS_ADMIN, "Content-Type": content_type})
    assert res.status_code == status and match in res.get_json()["error"]["message"]
    assert _get(client, "/v1/loops/recs/models").get_json()["models"] == []


@pytest.mark.parametrize("body, status, match", [
    ({"version": 9}, 404, "no model version 9 (kept: 1..1)"),
    ({}, 400, "version: required"),
    ({"version": "1"}, 400, "version: required"),
    ({"version": 1, "learn": "no"}, 400, "learn: must be true or false"),
    ({"version": 1, "force": 1}, 400, "force: must be true or false"),
    ({"version": 1, "reason": 3}, 400, "reason: must be a string"),
    ({"version": 1, "why": "x"}, 400, "why: unknown field"),
])
def test_bad_deploys_are_refused_naming_the_field(client, traffic, body, status, match):
    traffic.learn()
    res = _deploy(client, body)
    assert res.status_code == status and match in res.get_json()["error"]["message"]


def test_model_routes_need_the_admin_role_and_known_versions(client, traffic):
    traffic.learn()
    assert _deploy(client, {"version": 1}, key=DECIDE).status_code == 403
    for path in ("/v1/loops/recs/models", "/v1/loops/recs/models/1", "/v1/loops/recs/audit"):
        assert call(client, "get", path, headers={"X-API-Key": DECIDE}).status_code == 403
    assert _get(client, "/v1/loops/recs/models/7").status_code == 404
    assert _get(client, "/v1/loops/recs/models/x/snapshot").status_code == 404
    assert _get(client, "/v1/loops/nope/models").status_code == 404
    assert _get(client, "/v1/loops/recs/audit", query_string={"count": 0}).status_code == 400
    assert _get(client, "/v1/loops/recs/audit").get_json()["entries"] == []  # a 403 moves nothing


def test_concurrent_deploys_are_both_audited_and_one_wins(client, traffic, app):
    for _ in range(3):
        traffic.learn()
    barrier = threading.Barrier(2)

    def deploy(version):
        barrier.wait()
        assert _deploy(app.test_client(), {"version": version}).status_code == 200

    threads = [threading.Thread(target=deploy, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    audit = _get(client, "/v1/loops/recs/audit").get_json()["entries"]
    assert sorted(e["version"] for e in audit) == [1, 2]
    serving = _get(client, "/v1/loops/recs/models").get_json()["serving"]
    assert serving == audit[0]["version"]  # the last deploy wins
    assert _serving(client) == serving


def test_models_keep_drops_the_oldest_but_never_the_serving_version(r):
    config = parse_config({
        "service": {"publish_events": 20, "publish_seconds": 0.5},
        "models": {"keep": 3, "check_latency": "1s"},  # the latency check has its own tests
        "loops": {"recs": {"policy": {"type": "linucb", "alpha": 0.5}}}})
    client = create_app(config, r, keys=KEYS).test_client()
    traffic = Traffic(client, config, r)
    for _ in range(4):
        traffic.learn(5)
    kept = [m["version"] for m in _get(client, "/v1/loops/recs/models").get_json()["models"]]
    assert kept == [2, 3, 4] and r.get(keys.model_version("recs", 1)) is None
    assert _deploy(client, {"version": 2, "learn": False}).status_code == 200
    blob = make_policy({"type": "linucb", "alpha": 0.5}).to_bytes()
    for _ in range(3):
        assert call(client, "post", "/v1/loops/recs/models", data=blob, headers={
            **AS_ADMIN, "Content-Type": "application/octet-stream"}).status_code == 201
    kept = [m["version"] for m in _get(client, "/v1/loops/recs/models").get_json()["models"]]
    assert kept == [2, 4, 7]  # 2 serves; 4 is the learner's head (it resumes from there)
    assert _serving(client) == 2


@pytest.mark.parametrize("raw, match", [
    ({"service": {"model_history": 10}}, "service.model_history: replaced by models.keep"),
    ({"models": {"keep": 1}}, "models.keep"),
    ({"models": {"kept": 5}}, "models.kept: unknown key"),
])
def test_models_keep_is_the_one_history_setting(raw, match):
    with pytest.raises(Exception, match=match):
        parse_config({**raw, "loops": {"recs": {}}})
    assert parse_config({"loops": {"recs": {}}}).models_keep == 50


def test_a_deploy_is_audited_with_the_figures_and_checks_it_was_decided_on(client, traffic):
    traffic.learn()
    version = traffic.learn()
    assert _deploy(client, {"version": version - 1, "reason": "back"}).status_code == 200
    entry = _get(client, "/v1/loops/recs/audit").get_json()["entries"][0]
    shown = _get(client, f"/v1/loops/recs/models/{version - 1}").get_json()
    assert entry["action"] == "deploy" and entry["version"] == version - 1
    assert entry["figures"]["checks"] == {"loads": True, "pmf": True, "floor": True,
                                          "actions": True, "latency": True}
    assert entry["figures"]["figures"] == shown["figures"]
    assert "challenger" not in entry
