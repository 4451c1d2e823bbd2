"""Challengers against a real Redis: live off-policy figures recomputed exactly from the
log, the gate (409 with the figures), manual and automatic promotion, pins, a learner
that dies around a promotion, and /metrics."""
import json

import numpy as np
import pytest

from replay.estimators import snips
from service.api.auth import parse_key
from service.app import create_app
from service.config import parse_config
from service.errors import ConfigError
from service.learner import LoopLearner
from service.store import keys
from service.store.challengers import ChallengerStore

from .test_api import call

ADMIN, DECIDE = "admin-key-0123456789", "decide-key-0123456789"
KEYS = [parse_key({"key": ADMIN, "role": "admin", "name": "ops"}, "k0", False),
        parse_key({"key": DECIDE, "role": "decide", "name": "web"}, "k1", False)]
AS_ADMIN = {"X-API-Key": ADMIN}
ACTIONS = ["a", "b", "c"]
#: Click probability by group and action: the best action depends on the group.
CLICK = {"g0": {"a": 0.8, "b": 0.2, "c": 0.2}, "g1": {"a": 0.2, "b": 0.8, "c": 0.2}}
#: The champion's featurizer has no context x action interaction: it cannot tell groups apart.
FLAT = {"context_dim": 8, "action_dim": 4, "interaction_dim": 0}
CROSSED = {"context_dim": 8, "action_dim": 4, "interaction_dim": 16}


def make_config(mode="manual", challengers=None, burn_in=0, **promotion):
    rule = {"mode": mode, "min_events": 400, "min_ess": 50, "margin": 0.0, "interval": "1ms",
            **promotion}
    return parse_config({
        "service": {"publish_events": 50, "publish_seconds": 0.2},
        "models": {"check_latency": "1s"},
        "loops": {"hero": {
            "actions": ACTIONS, "featurizer": FLAT, "reward_wait": "30s", "seed": 3,
            "policy": {"type": "epsilon_greedy", "epsilon": 0.3},
            "promotion": rule, "evaluation": {"window": 5000, "burn_in": burn_in},
            "challengers": challengers if challengers is not None else [
                {"name": "contextual", "policy": {"type": "linucb", "alpha": 0.5,
                                                  "epsilon": 0.05},
                 "featurizer": CROSSED},
                {"name": "uniform", "policy": {"type": "epsilon_greedy", "epsilon": 1.0}}]}}})


class Loop:
    """Rank + reward through the app from the simulated clicks; learner steps."""

    def __init__(self, config, r, seed=0):
        self.config, self.r = config, r
        self.client = create_app(config, r, keys=KEYS).test_client()
        self.learner = LoopLearner(r, config.loops["hero"], config)
        self.rng, self.seed, self.t = np.random.default_rng(seed), seed, 0

    def run(self, n: int) -> None:
        # serve what the last drain published from the first rank on, not from whenever
        # the worker's periodic check (models.REFRESH_S of wall clock) comes round
        self.client.application.extensions["cbserve"]["loops"]["hero"].model.refresh()
        for _ in range(n):
            group = "g0" if self.rng.random() < 0.5 else "g1"
            self.t += 1  # event ids seed the draws: the whole run is reproducible
            res = self.client.post("/v1/loops/hero/rank", headers=AS_ADMIN,
                                   json={"context": {"user": {"group": group}},
                                         "event_id": f"ev-{self.seed}-{self.t}"})
            body = res.get_json()
            value = float(self.rng.random() < CLICK[group][body["chosen"]])
            assert self.client.post(f"/v1/loops/hero/events/{body['event_id']}/reward",
                                    headers=AS_ADMIN, json={"value": value}).status_code == 200
        self.drain()

    def drain(self) -> None:
        for _ in range(2):
            while self.learner.step():
                pass
            self.learner.publish()
            if self.learner.challengers is not None:
                self.learner.challengers._maybe_save(force=True)

    def get(self, path, **query):
        return call(self.client, "get", path, headers=AS_ADMIN, query_string=query)

    def post(self, path, body, key=ADMIN):
        return call(self.client, "post", path, json=body, headers={"X-API-Key": key})


@pytest.mark.parametrize("burn_in", [0, 100])
def test_the_figures_are_the_estimators_on_the_logged_events_in_join_order(r, burn_in):
    # a uniform challenger's pmf is 1/3 whatever it learned: every figure is exact; the
    # first burn_in events are not judged, but its reward model learns from them
    config = make_config(challengers=[{"name": "uniform",
                                       "policy": {"type": "epsilon_greedy", "epsilon": 1.0}}],
                         burn_in=burn_in)
    loop = Loop(config, r)
    loop.run(300)
    rows = []
    for _, f in r.xrange(keys.joined("hero")):
        raw = r.xrange(keys.log("hero"), f[b"s"], f[b"s"])[0][1][b"j"]
        event = json.loads(raw)
        rows.append((event["a"][0] - 1, event["p"][0], float(f[b"r"])))
    assert len(rows) == 300
    chosen = np.array([a for a, _, _ in rows])
    prop = np.array([p for _, p, _ in rows])
    reward = np.array([x for _, _, x in rows])
    # DR's reward model: the running mean reward of each action before the event
    sums, counts, total, dr_terms = np.zeros(3), np.zeros(3), 0.0, []
    for i, (a, p, x) in enumerate(rows):
        default = total / i if i else 0.0
        q = np.where(counts > 0, sums / np.maximum(counts, 1), default)
        dr_terms.append(q.mean() + (1 / 3) / p * (x - q[a]))
        sums[a] += x
        counts[a] += 1
        total += x
    fig = loop.get("/v1/loops/hero/challengers").get_json()["challengers"][0]["figures"]
    prop, reward, dr_terms = prop[burn_in:], reward[burn_in:], dr_terms[burn_in:]
    n = 300 - burn_in
    expected = snips(rewards=reward, propensities=prop, target_probs=np.full(n, 1 / 3))
    assert fig["n"] == n
    assert fig["snips"]["value"] == pytest.approx(expected.value, abs=1e-12)
    assert fig["snips"]["low"] == pytest.approx(expected.low, abs=1e-12)
    assert fig["dr"]["value"] == pytest.approx(float(np.mean(dr_terms)), abs=1e-12)
    assert fig["champion"]["value"] == pytest.approx(float(reward.mean()), abs=1e-12)
    assert fig["ess"] == pytest.approx((1 / prop).sum() ** 2 / (1 / prop ** 2).sum(), rel=1e-12)
    assert set(chosen) == {0, 1, 2}


def test_the_gate_refuses_with_the_figures_then_the_better_challenger_is_promoted(r):
    loop = Loop(make_config(), r)
    loop.run(100)  # under min_events: the gate refuses, and says why
    res = loop.post("/v1/loops/hero/promote", {"challenger": "contextual", "reason": "try"})
    assert res.status_code == 409
    err = res.get_json()["error"]
    assert err["code"] == "gate_refused" and "100 events < min_events 400" in err["message"]
    assert err["figures"]["n"] == 100 and err["gate"]["passes"] is False
    refused = loop.get("/v1/loops/hero/audit").get_json()["entries"][0]
    assert refused["action"] == "refused" and refused["challenger"] == "contextual"
    assert refused["figures"]["figures"]["n"] == 100
    loop.run(900)
    report = loop.get("/v1/loops/hero/challengers").get_json()
    verdicts = {c["name"]: c["verdict"] for c in report["challengers"]}
    assert verdicts == {"contextual": "better", "uniform": "worse"}, report
    res = loop.post("/v1/loops/hero/promote", {"challenger": "uniform"})
    assert res.status_code == 409  # truly worse: refused
    res = loop.post("/v1/loops/hero/promote", {"challenger": "contextual", "reason": "better"})
    assert res.status_code == 200, res.get_json()
    out = res.get_json()
    assert out["forced"] is False and out["gate"]["passes"] is True
    v = out["serving"]
    entry = loop.get(f"/v1/loops/hero/models/{v}").get_json()
    assert entry["source"] == "challenger" and entry["challenger"] == "contextual"
    assert entry["policy"]["name"] == "linucb" and entry["serving"] is True
    assert entry["parent"] == out["previous"]
    audit = loop.get("/v1/loops/hero/audit").get_json()["entries"][0]
    assert (audit["action"], audit["version"], audit["key"]) == ("promote", v, "ops")
    assert audit["figures"]["figures"] == out["figures"]
    # every worker serves it; the windows start again against the new champion
    worker = create_app(loop.config, r, keys=KEYS).test_client()
    served = worker.post("/v1/loops/hero/rank", headers=AS_ADMIN,
                         json={"context": {"user": {"group": "g0"}}}).get_json()
    assert served["model"] == {"policy": "linucb", "version": v}
    assert all(c["figures"] is None
               for c in loop.get("/v1/loops/hero/challengers").get_json()["challengers"])
    # the champion's learner continues from the promoted version
    loop.run(60)
    head = loop.get("/v1/loops/hero/models").get_json()
    latest = head["models"][-1]
    assert latest["source"] == "learner" and latest["parent"] == v and head["serving"] == latest["version"]
    assert latest["policy"]["name"] == "linucb"


def test_auto_mode_promotes_the_better_challenger_and_never_the_worse(r):
    loop = Loop(make_config(mode="auto"), r, seed=1)
    loop.run(1500)
    audit = loop.get("/v1/loops/hero/audit", count=1000).get_json()["entries"]
    promoted = [e for e in audit if e["action"] == "promote"]
    assert promoted and {e["challenger"] for e in promoted} == {"contextual"}
    assert promoted[-1]["key"] == "learner (auto)"
    models = loop.get("/v1/loops/hero/models").get_json()
    served = {m["version"]: m for m in models["models"]}
    assert served[promoted[-1]["version"]]["source"] == "challenger"


def test_a_pinned_loop_is_never_auto_promoted_and_its_challengers_learn_on(r):
    loop = Loop(make_config(mode="auto"), r, seed=2)
    loop.run(40)
    v = loop.get("/v1/loops/hero/models").get_json()["serving"]
    assert loop.post("/v1/loops/hero/deploy", {"version": v, "learn": False}).status_code == 200
    loop.run(1200)
    actions = [e["action"] for e in loop.get("/v1/loops/hero/audit").get_json()["entries"]]
    assert "promote" not in actions
    assert loop.get("/v1/loops/hero/models").get_json()["serving"] == v
    report = loop.get("/v1/loops/hero/challengers").get_json()
    assert report["challengers"][0]["figures"]["n"] == 1240
    assert report["challengers"][0]["verdict"] == "better"


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_learner_dying_around_a_promotion_leaves_all_of_it_or_none(r, monkeypatch, when):
    config = make_config(mode="auto")
    loop = Loop(config, r, seed=1)
    original = ChallengerStore.promote

    class Died(Exception):
        pass

    def dying(self, *args, **kwargs):
        if when == "after":
            original(self, *args, **kwargs)
        raise Died(when)

    monkeypatch.setattr(ChallengerStore, "promote", dying)
    with pytest.raises(Died):
        loop.run(1500)
    monkeypatch.setattr(ChallengerStore, "promote", original)
    audit = [e["action"] for e in loop.get("/v1/loops/hero/audit").get_json()["entries"]]
    models = loop.get("/v1/loops/hero/models").get_json()
    from_challenger = [m for m in models["models"] if m["source"] == "challenger"]
    pointer = r.hgetall(keys.serving("hero"))
    head = r.hgetall(keys.model("hero"))
    if when == "before":
        assert "promote" not in audit and not from_challenger
    else:
        assert audit.count("promote") == 1 and len(from_challenger) == 1
        assert int(pointer[b"version"]) == from_challenger[0]["version"]
        assert int(head[b"version"]) == from_challenger[0]["version"]
    # a new learner, once the dead one's lock expired, learns from the pointer's version
    r.delete(keys.learner_lock("hero"))
    loop.learner = LoopLearner(r, config.loops["hero"], config)
    last = max(m["version"] for m in models["models"])
    loop.run(100)
    models = loop.get("/v1/loops/hero/models").get_json()
    first = next(m for m in models["models"] if m["version"] > last)
    assert first["parent"] == int(pointer[b"version"])
    assert models["serving"] == models["models"][-1]["version"]


def test_promote_needs_the_admin_role_a_known_challenger_and_a_valid_body(r):
    loop = Loop(make_config(), r)
    loop.run(20)
    assert loop.post("/v1/loops/hero/promote", {"challenger": "contextual"}, DECIDE).status_code == 403
    res = loop.post("/v1/loops/hero/promote", {"challenger": "nope"})
    assert res.status_code == 404 and "contextual, uniform" in res.get_json()["error"]["message"]
    for body, field in (({}, "challenger"), ({"challenger": "uniform", "force": "yes"}, "force"),
                        ({"challenger": "uniform", "when": 1}, "when")):
        res = loop.post("/v1/loops/hero/promote", body)
        assert res.status_code == 400 and res.get_json()["error"]["message"].startswith(field)
    # force promotes past the gate and says so; the audit records it
    res = loop.post("/v1/loops/hero/promote", {"challenger": "uniform", "force": True})
    assert res.status_code == 200 and res.get_json()["forced"] is True
    assert loop.get("/v1/loops/hero/audit").get_json()["entries"][0]["force"] is True


def test_metrics_export_the_challengers_figures(r):
    loop = Loop(make_config(), r)
    loop.run(100)
    text = loop.client.get("/metrics", headers=AS_ADMIN).get_data(as_text=True)
    assert 'cbserve_challenger_events{challenger="contextual",loop="hero"} 100.0' in text
    assert 'cbserve_challenger_value{bound="value",challenger="uniform",estimator="snips",loop="hero"}' in text
    assert 'cbserve_champion_value{bound="value",loop="hero"}' in text


@pytest.mark.parametrize("challengers, key", [
    ([{"name": "x", "policy": {"type": "linucb"}}, {"name": "x", "policy": {"type": "linucb"}}],
     "loops.hero.challengers[1].name"),
    ([{"name": "x"}], "loops.hero.challengers[0].policy"),
    ([{"name": "x", "policy": {"type": "linucb", "alfa": 1}}],
     "loops.hero.challengers[0].policy.alfa"),
    ([{"name": "x", "policy": {"type": "linucb"}, "weight": 1}], "loops.hero.challengers[0].weight"),
    ("linucb", "loops.hero.challengers"),
])
def test_bad_challengers_are_refused_naming_the_key(challengers, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        make_config(challengers=challengers)


@pytest.mark.parametrize("promotion, key", [({"mode": "sometimes"}, "promotion.mode"),
                                            ({"estimator": "ips"}, "promotion.estimator"),
                                            ({"min_ess": -1}, "promotion.min_ess"),
                                            ({"interval": "soon"}, "promotion.interval")])
def test_bad_promotion_rules_are_refused_naming_the_key(promotion, key):
    with pytest.raises(ConfigError, match=key):
        make_config(**promotion)


def test_a_pinned_loop_is_promoted_only_with_force(r):
    loop = Loop(make_config(), r)
    loop.run(1000)
    v = loop.get("/v1/loops/hero/models").get_json()["serving"]
    assert loop.post("/v1/loops/hero/deploy", {"version": v, "learn": False}).status_code == 200
    res = loop.post("/v1/loops/hero/promote", {"challenger": "contextual"})
    assert res.status_code == 409 and "pinned" in res.get_json()["error"]["message"]
    assert loop.get("/v1/loops/hero/models").get_json()["serving"] == v
    res = loop.post("/v1/loops/hero/promote", {"challenger": "contextual", "force": True})
    assert res.status_code == 200 and loop.get("/v1/loops/hero/models").get_json()["learning"]


def test_events_the_champion_learned_after_the_challengers_save_are_learned_by_the_promoted_model(r):
    config = make_config()
    loop = Loop(config, r)
    loop.run(1000)
    # the champion learns and publishes 40 more events; the challengers have not saved them
    loop.client.environ_base["HTTP_X_API_KEY"] = ADMIN
    for i in range(40):
        res = loop.client.post("/v1/loops/hero/rank", json={"context": {"user": {"group": "g0"}}})
        loop.client.post(f"/v1/loops/hero/events/{res.get_json()['event_id']}/reward",
                         json={"value": 1.0})
    champion = loop.learner
    while champion._learn(champion.store.read_joined(">", 500)):
        pass
    champion.publish()
    saved = r.hget(keys.challengers("hero"), "last_id").decode()
    assert r.xlen(keys.joined("hero")) == 1040
    out = loop.post("/v1/loops/hero/promote", {"challenger": "contextual", "force": True}).get_json()
    promoted = loop.get(f"/v1/loops/hero/models/{out['serving']}").get_json()
    # a new learner continues from the promoted model and learns the 40 events once
    r.delete(keys.learner_lock("hero"))
    loop.learner = LoopLearner(r, config.loops["hero"], config)
    loop.drain()
    latest = loop.get("/v1/loops/hero/models").get_json()["models"][-1]
    after = [sid for sid, _ in r.xrange(keys.joined("hero"), "(" + saved)]
    assert len(after) == 40
    assert latest["parent"] == out["serving"] and latest["events_learned"] == \
        promoted["events_learned"] + 40
