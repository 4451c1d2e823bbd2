"""Multi-slot decisions through the HTTP API against a real Redis: every slot decided
without duplicates and logged in VW's CCB layout, rewarded and joined exactly once per
slot (defaults at expiry, deferred slates on activation), learned slot by slot, and
read by VW itself (its parser slot by slot, its command-line driver as a whole)."""
import json
import subprocess
import sys
import time

import pytest
import vowpalwabbit

from bandits import dsjson_slots
from service.app import create_app
from service.cli import main as cbserve
from service.config import load_config
from service.learner import LoopLearner
from service.store import LoopStore, keys

from .test_api import call

TOML = """
[service]
allow_anonymous = true
publish_events = 1000
publish_seconds = 600
[loops.car]
reward_wait = "1s"
default_reward = -0.5
slots = [{id = "s1", features = {pos = {p1 = 1}}}, {id = "s2", features = {pos = {p2 = 1}}},
         {id = "s3", features = {pos = {p3 = 1}}}]
[loops.car.policy]
type = "epsilon_greedy"
epsilon = 0.3
[loops.plain]
reward_wait = "1s"
"""
ITEMS = [{"id": f"item-{i}", "features": {"item": {"genre": ["drama", "comedy"][i % 2], "n": i}}}
         for i in range(6)]


@pytest.fixture
def setup(tmp_path, r):
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    config = load_config(str(path))
    return config, create_app(config, r).test_client(), path


def _rank(client, event_id, loop="car", **extra):
    out = call(client, "post", f"/v1/loops/{loop}/rank", json={"context": {"user": {"age": 30}},
                                                      "actions": ITEMS, "event_id": event_id, **extra})
    assert out.status_code == 200, out.get_json()
    return out.get_json()


def _reward(client, event_id, body, loop="car"):
    return call(client, "post", f"/v1/loops/{loop}/events/{event_id}/reward", json=body)


def _joined(r, loop="car"):
    return [(f[b"e"].decode(), f.get(b"sl", b"").decode(), float(f[b"r"]), f[b"k"].decode())
            for _, f in r.xrange(keys.joined(loop))]


def test_each_slot_is_decided_over_the_actions_left_and_logged_as_ccb(setup, r):
    _, client, _ = setup
    body = _rank(client, "e1", k=2)
    slots = body["slots"]
    assert [s["id"] for s in slots] == ["s1", "s2", "s3"]
    assert len({s["chosen"] for s in slots}) == 3                  # no duplicates
    assert (body["chosen"], body["probability"]) == (slots[0]["chosen"], slots[0]["probability"])
    assert all(len(s["ranking"]) == 2 and s["ranking"][0]["id"] == s["chosen"] for s in slots)
    event = json.loads(r.xrange(keys.log("car"))[-1][1][b"j"])
    assert [o["_id"] for o in event["_outcomes"]] == ["s1", "s2", "s3"]
    assert event["c"]["_slots"][1] == {"_id": "s2", "pos": {"p2": 1}}
    ids = event["ActionIds"]
    used = set()
    for s, outcome in zip(slots, event["_outcomes"]):
        assert ids[outcome["_a"][0]] == s["chosen"] and outcome["_p"][0] == s["probability"]
        assert set(outcome["_a"]) == set(range(6)) - used           # the actions left
        assert sum(outcome["_p"]) == pytest.approx(1.0, abs=1e-12)
        # epsilon-greedy over 6, 5, 4 actions: the untrained model ties, so it is uniform
        assert outcome["_p"] == pytest.approx([1 / (6 - len(used))] * (6 - len(used)))
        used.add(outcome["_a"][0])
    # what the learner reads back is what the policy decided on
    record = dsjson_slots.decode_slots(event)
    assert record.context == {"user": {"age": 30}}
    assert record.pairs == [(a["id"], a["features"]) for a in ITEMS]


def test_request_slots_replace_the_loops_and_restrict_their_actions(setup):
    _, client, _ = setup
    body = _rank(client, "e1", slots=[{"id": "hero", "actions": ["item-4", "item-5"]},
                                      {"id": "rest", "features": {"size": {"small": 1}}}])
    assert [s["id"] for s in body["slots"]] == ["hero", "rest"]
    assert body["slots"][0]["chosen"] in ("item-4", "item-5")
    assert body["slots"][0]["probability"] == pytest.approx(0.5)
    assert body["slots"][1]["probability"] == pytest.approx(1 / 5)


def test_the_slate_is_reproducible_from_the_event_id(setup, tmp_path, r):
    config, client, _ = setup
    first = [s["chosen"] for s in _rank(client, "same-id")["slots"]]
    r.flushall()
    again = create_app(config, r).test_client()
    assert [s["chosen"] for s in _rank(again, "same-id")["slots"]] == first


@pytest.mark.parametrize("body,field", [
    ({"slots": [{"id": "a"}, {"id": "a"}]}, "slots[1].id"),
    ({"slots": [{"id": "a", "actions": ["item-1"]}, {"id": "b", "actions": ["item-1"]}]}, "slots[1]"),
    ({"slots": [{"id": "a", "actions": ["nope"]}]}, "slots[0]"),
    ({"slots": [{"id": f"s{i}"} for i in range(7)]}, "slots"),
    ({"slots": [{"id": "a", "features": {"user": {"x": 1}}}]}, "slots[0].features.user"),
    ({"slots": [{"id": "a b"}]}, "slots[0].id"),
    ({"slots": [{"id": "a", "where": 1}]}, "slots[0].where"),
    ({"slots": []}, "slots"),
])
def test_bad_slots_are_400s_naming_the_field_and_log_nothing(setup, r, body, field):
    _, client, _ = setup
    out = call(client, "post", "/v1/loops/car/rank",
               json={"context": {"user": {"age": 1}}, "actions": ITEMS, **body})
    assert out.status_code == 400, out.get_json()
    assert out.get_json()["error"]["message"].startswith(field + ":")
    assert r.xlen(keys.log("car")) == 0


def test_rewards_per_slot_are_joined_once_and_refusals_lose_nothing(setup, r):
    _, client, _ = setup
    _rank(client, "e1")
    assert _reward(client, "e1", {"slot": "s2", "value": 1}).get_json()["status"] == "accepted"
    assert _reward(client, "e1", {"slot": "s2", "value": 1}).get_json()["status"] == "duplicate"
    conflict = _reward(client, "e1", {"values": {"s1": 0.5, "s2": 0}})   # all or nothing
    assert conflict.status_code == 409 and "'s2'" in conflict.get_json()["error"]["message"]
    for body, status, field in [({"slot": "s9", "value": 1}, 400, "slot"),
                                ({"values": {"s1": 1, "s9": 1}}, 400, "values.s9"),
                                ({"value": 1}, 400, "slot"),
                                ({"slot": "s1"}, 400, "value"),
                                ({"values": {}}, 400, "values"),
                                ({"values": {"s1": 1}, "value": 1}, 400, "values")]:
        out = _reward(client, "e1", body)
        assert out.status_code == status and out.get_json()["error"]["message"].startswith(field + ":")
    assert _joined(r) == [("e1", "s2", 1.0, "reward")]           # nothing else was written
    assert _reward(client, "e1", {"values": {"s1": 0.5, "s3": 0}}).status_code == 200
    assert sorted(_joined(r)) == [("e1", "s1", 0.5, "reward"), ("e1", "s2", 1.0, "reward"),
                                  ("e1", "s3", 0.0, "reward")]
    assert r.hget(keys.event("car", "e1"), "st") == b"joined"
    stats = r.hgetall(keys.stats("car"))
    assert (stats[b"slot_joins"], stats[b"joined"], stats[b"reward_sum"]) == (b"3", b"1", b"0.5")
    # a slot reward on a single decision, an unknown event
    client.post("/v1/loops/plain/rank", json={"actions": ITEMS, "event_id": "p1"})
    out = _reward(client, "p1", {"slot": "s1", "value": 1}, loop="plain")
    assert out.status_code == 400 and out.get_json()["error"]["message"].startswith("slot:")
    out = _reward(client, "p1", {"values": {"s1": 1}}, loop="plain")
    assert out.status_code == 400 and out.get_json()["error"]["message"].startswith("values:")
    assert _reward(client, "nope", {"slot": "s1", "value": 1}).status_code == 404
    # an unknown slot is named before a conflict on another
    out = _reward(client, "e1", {"values": {"s1": 9, "top": 1}})
    assert out.status_code == 400 and out.get_json()["error"]["message"].startswith("values.top:")


def test_defaults_per_slot_at_expiry_and_a_late_reward_is_gone(setup, r):
    config, client, _ = setup
    _rank(client, "e1")
    assert _reward(client, "e1", {"slot": "s3", "value": 1}).status_code == 200
    time.sleep(1.1)
    assert _reward(client, "e1", {"slot": "s1", "value": 1}).status_code == 410
    assert LoopStore(r, config.loops["car"]).sweep() == (1, 0)
    assert sorted(_joined(r)) == [("e1", "s1", -0.5, "default"), ("e1", "s2", -0.5, "default"),
                                  ("e1", "s3", 1.0, "reward")]
    assert r.hget(keys.stats("car"), "defaults") == b"1"           # the event's first slot


def test_a_deferred_slate_is_joined_on_activation(setup, r):
    config, client, _ = setup
    _rank(client, "e1", defer=True)
    assert _reward(client, "e1", {"values": {"s1": 1, "s2": 0}}).status_code == 200
    assert _joined(r) == []
    assert client.post("/v1/loops/car/events/e1/activate").status_code == 200
    assert sorted(_joined(r)) == [("e1", "s1", 1.0, "reward"), ("e1", "s2", 0.0, "reward")]
    assert _reward(client, "e1", {"slot": "s3", "value": 2}).status_code == 200
    assert len(_joined(r)) == 3 and r.hget(keys.event("car", "e1"), "st") == b"joined"
    _rank(client, "e2", defer=True)
    _reward(client, "e2", {"slot": "s1", "value": 1})
    time.sleep(1.1)
    assert LoopStore(r, config.loops["car"]).sweep() == (0, 1)     # never activated: expired
    assert len(_joined(r)) == 3


def test_the_learner_learns_every_slot_with_its_features(setup, r):
    config, client, _ = setup
    for i in range(20):
        _rank(client, f"e{i}")
        _reward(client, f"e{i}", {"values": {"s1": 1, "s2": 0, "s3": 0.5}})
    learner = LoopLearner(r, config.loops["car"], config)
    assert learner.step() == 60
    learned = []
    real = learner.policy.learn
    learner.policy.learn = lambda batch: (learned.extend(batch), real(batch))
    _rank(client, "x")
    _reward(client, "x", {"values": {"s1": 1, "s2": 0, "s3": 0.5}})
    assert learner.step() == 3
    event = json.loads(r.xrange(keys.log("car"))[-1][1][b"j"])
    by_slot = {fb.context["pos"].popitem()[0]: fb for fb in learned}
    assert sorted(by_slot) == ["p1", "p2", "p3"]
    for j, (key, outcome) in enumerate(zip(["p1", "p2", "p3"], event["_outcomes"])):
        fb = by_slot[key]
        assert [a["id"] for a in fb.actions] == [event["ActionIds"][i] for i in outcome["_a"]]
        assert (fb.chosen, fb.propensity, fb.reward) == (0, outcome["_p"][0], [1.0, 0.0, 0.5][j])


@pytest.fixture
def ccb_export(setup, r, redis_server, monkeypatch, tmp_path):
    """Slates with every kind of outcome, past the reward wait, exported."""
    config, client, path = setup
    expected = {}
    for i in range(30):
        eid = f"e{i}"
        _rank(client, eid, defer=i % 10 == 9)
        rewards = {"s1": float(i % 3), "s3": 0.25} if i % 2 else {"s2": 1.0}
        _reward(client, eid, {"values": rewards})
        if i == 19:
            client.post(f"/v1/loops/car/events/{eid}/activate")
        active = i % 10 != 9 or i == 19
        expected[eid] = {s: rewards.get(s, -0.5) for s in ("s1", "s2", "s3")} if active else {}
    time.sleep(1.1)
    LoopStore(r, config.loops["car"]).sweep()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    out = tmp_path / "car.json"
    assert cbserve(["export", "--config", str(path), "--loop", "car", "-o", str(out)]) == 0
    return out, expected


def test_vw_reads_each_slot_label_and_the_logged_slot_decisions(ccb_export):
    path, expected = ccb_export
    lines = path.read_text().splitlines()
    assert len(lines) == 30
    vw = vowpalwabbit.Workspace("--ccb_explore_adf --dsjson --quiet")
    kind = vowpalwabbit.LabelType.CONDITIONAL_CONTEXTUAL_BANDIT
    for line in lines:
        event = json.loads(line)
        examples = vw.parse(line)
        labels = [e.get_label(kind) for e in examples]
        want = expected[event["EventId"]]
        if not want:  # never activated: no slot has a label, and VW passes over such a slate
            assert len(examples) == 1   # one empty example in place of the 10 of a labelled slate
            assert all("_label_cost" not in o and len(o["a"]) == len(o["p"]) for o in event["_outcomes"])
            vw.finish_example(examples)
            continue
        assert [lab.type for lab in labels] == [0] + [1] * 6 + [2] * 3
        slots = [lab for lab in labels if lab.type == 2]
        for lab, outcome, slot in zip(slots, event["_outcomes"], ("s1", "s2", "s3")):
            assert lab.outcome.cost == pytest.approx(-want[slot])
            assert [a.action for a in lab.outcome.action_probs] == outcome["_a"]
            assert [a.score for a in lab.outcome.action_probs] == pytest.approx(outcome["_p"], rel=1e-6)
        vw.finish_example(examples)


def test_vw_driver_learns_every_labelled_slot(ccb_export, tmp_path):
    path, expected = ccb_export
    metrics = tmp_path / "m.json"
    run = subprocess.run([sys.executable, "-m", "vowpalwabbit", "--ccb_explore_adf", "--dsjson",
                          "-d", str(path), "--extra_metrics", str(metrics)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "number of examples = 28" in run.stderr   # the 2 slates never activated have no label
    m = json.loads(metrics.read_text())
    assert m["line_parse_error"] == 0 and m["number_skipped_events"] == 0
    learner = next(v for k, v in m.items() if k.startswith("cb_explore_adf"))
    labelled = [v for want in expected.values() for v in want.values()]
    assert learner["cbea_labeled_ex"] == len(labelled) == 28 * 3
    assert learner["cbea_sum_cost"] == pytest.approx(-sum(labelled))


def test_explain_covers_each_slot_with_its_features(setup):
    _, client, _ = setup
    body = _rank(client, "e1", explain=5)
    assert "explanation" not in body            # the first slot's is in slots[0]
    for j, s in enumerate(body["slots"]):
        why = s["explanation"]["actions"]
        assert [e["id"] for e in why] == [s["chosen"]]
        named = {(f["namespace"], f["feature"]) for f in why[0]["features"]}
        assert ("pos", f"p{j + 1}") in named   # the slot's own feature is part of its context
        p = why[0]["probability"]
        assert p["greedy"] + p["epsilon_floor"] == pytest.approx(s["probability"], abs=1e-12)


@pytest.mark.parametrize("body,field", [
    ({"slots": [{"id": "top\n"}]}, "slots[0].id"),
    ({"event_id": "e1\n"}, "event_id"),
    ({"slots": [{"id": "a", "features": {"pos": {"i": [1, 2]}}}]}, "slots[0].features.pos.i"),
    ({"slots": [{"id": "a"}, {"id": "b", "actions": ["nope"]}]}, "slots[1]"),
])
def test_odd_ids_and_bad_slot_features_are_named(setup, r, body, field):
    _, client, _ = setup
    out = call(client, "post", "/v1/loops/car/rank",
               json={"context": {"user": {"age": 1}}, "actions": ITEMS, **body})
    assert out.status_code == 400, out.get_json()
    message = out.get_json()["error"]["message"]
    assert message.startswith(field + ":"), message
    if field == "slots[1]":
        assert "none of its actions is a candidate" in message
    assert r.xlen(keys.log("car")) == 0


def test_a_parquet_export_leaves_slates_out_and_keeps_the_rest(setup, r, redis_server, monkeypatch, tmp_path):
    pytest.importorskip("pyarrow")
    _, client, path = setup
    _rank(client, "slate-1")
    _rank(client, "slate-2", defer=True)            # no slot joined: still left out cleanly
    _reward(client, "slate-1", {"slot": "s1", "value": 1})
    assert client.post("/v1/loops/plain/rank", json={"actions": ITEMS, "event_id": "p1"}).status_code == 200
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    for loop, rows in (("car", 0), ("plain", 1)):
        out = tmp_path / f"{loop}.parquet"
        assert cbserve(["export", "--config", str(path), "--loop", loop, "-o", str(out)]) == 0
        import pyarrow.parquet as pq
        assert pq.read_table(out).num_rows == rows
