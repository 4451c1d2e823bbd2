"""Drift detection and correction: the detectors on known streams, PSI on a small
example, and, against a real Redis, the detectors' state across a learner restart, the
explore and reset corrections as the workers and the learner see them, the audit."""
import json
import random
import time

import numpy as np
import pytest

from service.api.requests import RankRequest
from service.config import parse_config
from service.drift import RewardDetector, Windows, psi
from service.errors import ConfigError
from service.learner import LoopLearner
from service.loops import LoopService
from service.store import keys

HERO = ["hero-a", "hero-b", "hero-c", "hero-d"]


def _config(**drift):
    return parse_config({
        "service": {"publish_events": 50, "publish_seconds": 3600.0},
        "models": {"check_latency": "1s"},
        "loops": {"hero": {"actions": HERO, "seed": 1, "reward_wait": "10m",
                           "policy": {"type": "epsilon_greedy", "epsilon": 0.2, "model": "disjoint"},
                           "featurizer": {"context_dim": 8, "interaction_dim": 0, "action_id": False},
                           "drift": {"window": 100, **drift}}}})


def _traffic(service, n, reward, start=0):
    """n decisions, each rewarded at once with ``reward(i, chosen)``; the rank bodies."""
    out = []
    for i in range(start, start + n):
        req = RankRequest(context={"user": {"segment": f"s{i % 3}"}}, actions=None,
                          event_id=f"e{i}", defer=False, exclude=frozenset(), k=None)
        body = service.rank(req, time.perf_counter())
        service.store.reward(body["event_id"], reward(i, body["chosen"]))
        out.append(body)
    return out


def _learn(learner):
    while learner.step():
        pass
    learner.publish()


def _drift(r, field):
    raw = r.hget(keys.drift("hero"), field)
    return json.loads(raw) if raw else None


# -- pure math ------------------------------------------------------------------------
def test_psi_of_a_small_example_is_exact():
    # shares p = (0.6, 0.4), q = (0.4, 0.6): 0.2·ln(1.5) + (−0.2)·ln(2/3) = 0.4·ln(1.5)
    assert psi([60, 40], [40, 60]) == pytest.approx(0.4 * np.log(1.5), rel=1e-12)
    assert psi([3, 3, 3], [1, 1, 1]) == 0.0
    # an empty bucket counts as the share 1e-4
    assert psi([1, 0], [0, 1]) == pytest.approx(2 * (1 - 1e-4) * np.log(1e4), rel=1e-12)


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley"])
def test_no_detection_on_a_stationary_seeded_stream(detector):
    rng, d = random.Random(7), RewardDetector(detector, 0.002, 5000)
    hits = [i for i in range(50_000) if d.update(float(rng.random() < 0.1))]
    assert hits == []
    assert d.figures()["state"] == "ok" and d.figures()["events"] == 50_000


@pytest.mark.parametrize("detector,within", [("adwin", 2500), ("page_hinkley", 3000)])
def test_a_drop_is_detected_within_a_stated_number_of_events(detector, within):
    for seed in range(3):
        rng, d = random.Random(seed), RewardDetector(detector, 0.002, 5000)
        hits = [i for i in range(30_000)
                if d.update(float(rng.random() < (0.10 if i < 20_000 else 0.05)))]
        assert hits and 20_000 <= hits[0] < 20_000 + within, (seed, hits)
        figs = d.figures()
        assert figs["detections"] == len(hits) and figs["last_detected"] is not None
        assert figs["mean_reference"] > figs["mean_recent"]


def test_a_rise_is_not_a_drift():
    rng, d = random.Random(3), RewardDetector("adwin", 0.002, 5000)
    assert not [i for i in range(20_000) if d.update(float(rng.random() < (0.05 if i < 10_000 else 0.10)))]


def test_a_namespace_shift_is_flagged_in_the_first_window_that_holds_it():
    rng, w, found = np.random.default_rng(0), Windows(1000, 0.2), []
    for i in range(5000):
        shifted = i >= 3000
        ctx = {"user": {"age": float(rng.normal(50 if shifted else 35, 10))},
               "device": {"os": "ios" if rng.random() < 0.5 else "android"}}
        done = w.add(ctx, HERO[i % 4])
        if done is not None:
            found.append((i + 1, done["context"]["namespaces"]["user"]["drifted"],
                          done["context"]["namespaces"]["device"]["drifted"],
                          done["actions"]["drifted"]))
    assert found == [(2000, False, False, False), (3000, False, False, False),
                     (4000, True, False, False), (5000, False, False, False)]


# -- with Redis ------------------------------------------------------------------------
def test_detector_state_survives_a_learner_restart_and_no_event_is_fed_twice(r):
    config = _config()
    loop = config.loops["hero"]
    service = LoopService(r, loop, config)
    first = LoopLearner(r, loop, config)
    _traffic(service, 60, lambda i, k: 1.0)
    while first.step():
        pass  # 60 learned; published at 50 or more
    assert _drift(r, "reward")["events"] == 60
    _traffic(service, 30, lambda i, k: 0.0, start=60)
    while first.step():
        pass  # learned, not published (30 < 50): the learner then dies
    assert first.drift.state["reward"].events == 90
    assert _drift(r, "reward")["events"] == 60
    first.store.release_lock()
    second = LoopLearner(r, loop, config)
    _learn(second)
    assert _drift(r, "reward")["events"] == 90  # the 30 unpublished ones once, the 60 not again
    assert second.drift.state["reward"].events == 90
    assert second.drift.state["windows"].seen == 90


def _drop(service, learner, good=300, bad=200):
    """Rewards 1 then 0: the reward detector fires on the drop."""
    _traffic(service, good, lambda i, k: 1.0)
    _learn(learner)
    _traffic(service, bad, lambda i, k: 0.0, start=good)
    _learn(learner)


def test_explore_raises_the_floor_of_the_workers_until_the_counter_passes(r):
    config = _config(on_reward_drift="explore", explore_epsilon=0.8, explore_for=150)
    loop = config.loops["hero"]
    service, learner = LoopService(r, loop, config), LoopLearner(r, loop, config)
    _drop(service, learner)
    reward = _drift(r, "reward")
    assert reward["detections"] >= 1 and reward["last_detected"] is not None
    correction = _drift(r, "correction")
    assert correction["mode"] == "explore" and correction["active"] and correction["epsilon"] == 0.8
    decisions = int(r.hget(keys.stats("hero"), "decisions"))
    assert correction["until"] <= decisions + 150
    pointer = {k.decode(): v.decode() for k, v in r.hgetall(keys.serving("hero")).items()}
    assert float(pointer["explore"]) == 0.8 and int(pointer["explore_until"]) == correction["until"]
    worker = LoopService(r, loop, config)  # another worker: it reads the pointer
    floored, after = [], []
    for i in range(correction["until"] - decisions + 60):
        worker.model._checked = float("-inf")  # as after REFRESH_S: read the pointer again
        body = _traffic(worker, 1, lambda i, k: 0.0, start=10_000 + i)[0]
        low = min(a["probability"] for a in body["ranking"])
        (floored if i < correction["until"] - decisions else after).append(low)
    assert min(floored) >= 0.8 / 4 - 1e-12  # (1 − ε)·pmf + ε/K: every action at least ε/K
    assert max(after) < 0.2  # back to the policy's own ε/K = 0.05 (or its tie split)
    _learn(learner)
    assert _drift(r, "correction")["active"] is False
    assert r.hget(keys.serving("hero"), "explore") is None
    actions = [f["action"] for _, f in reversed(service.registry.audit(50))]
    assert "drift" in actions and "correction" in actions
    entry = next(f for _, f in service.registry.audit(50) if f["action"] == "correction")
    figures = json.loads(entry["figures"])
    assert figures["detection"]["detector"] == "adwin" and figures["correction"]["epsilon"] == 0.8


def test_the_logged_probability_is_the_floored_one(r):
    config = _config(on_reward_drift="explore", explore_epsilon=0.8, explore_for=1000)
    loop = config.loops["hero"]
    service, learner = LoopService(r, loop, config), LoopLearner(r, loop, config)
    _drop(service, learner)
    service.model._checked = float("-inf")
    body = _traffic(service, 1, lambda i, k: 0.0, start=50_000)[0]
    logged = json.loads(r.xrevrange(keys.log("hero"), count=1)[0][1][b"j"])
    assert logged["p"][0] == body["probability"] >= 0.2


def test_reset_deploys_a_fresh_version_and_learning_continues(r):
    config = _config(on_reward_drift="reset")
    loop = config.loops["hero"]
    service, learner = LoopService(r, loop, config), LoopLearner(r, loop, config)
    _drop(service, learner)
    fresh = [e for e in service.registry.entries() if e["source"] == "reset"]
    assert len(fresh) == 1 and fresh[0]["events_learned"] == 0
    assert fresh[0]["checks"]["passed"] is True
    v = fresh[0]["version"]
    pointer = service.registry.serving()
    assert int(pointer["version"]) == v and pointer["learn"] == "1"
    assert _drift(r, "correction")["mode"] == "reset" and _drift(r, "correction")["version"] == v
    assert learner.version == v and learner.policy.n_learned == 0
    _traffic(service, 60, lambda i, k: 1.0, start=1000)
    _learn(learner)
    assert learner.version > v
    assert service.registry.entry(learner.version)["parent"] == v
    assert service.registry.entry(learner.version)["events_learned"] == 60
    rows = [(f["action"], f["reason"]) for _, f in reversed(service.registry.audit(50))]
    i = rows.index(("drift", "reward drift detected"))
    after = [a for a, _ in rows[i + 1:] if a != "drift"]  # context or action drift may be there
    assert after[:3] == ["upload", "deploy", "correction"]


def test_alert_only_records(r):
    config = _config()
    loop = config.loops["hero"]
    service, learner = LoopService(r, loop, config), LoopLearner(r, loop, config)
    _drop(service, learner)
    assert _drift(r, "reward")["detections"] >= 1
    assert _drift(r, "correction") is None
    assert r.hget(keys.serving("hero"), "explore") is None
    assert [e["source"] for e in service.registry.entries() if e["source"] != "learner"] == []
    audit = [f for _, f in service.registry.audit(50)]
    assert any(f["action"] == "drift" and f["reason"] == "reward drift detected" for f in audit)
    assert not any(f["action"] == "correction" for f in audit)


def test_the_drift_hash_holds_json_the_health_page_reads(r):
    config = _config()
    loop = config.loops["hero"]
    service, learner = LoopService(r, loop, config), LoopLearner(r, loop, config)
    _traffic(service, 250, lambda i, k: float(k == "hero-a"))
    _learn(learner)
    reward, context, actions = _drift(r, "reward"), _drift(r, "context"), _drift(r, "actions")
    assert set(reward) == {"detector", "state", "events", "detections", "last_detected",
                           "mean_recent", "mean_reference"}
    assert context["window"] == 100 and set(context["namespaces"]) == {"user"}
    assert context["namespaces"]["user"]["drifted"] is False
    assert set(actions) >= {"psi", "drifted"}


@pytest.mark.parametrize("drift,key,match", [
    ({"detector": "cusum"}, "loops.hero.drift.detector", "adwin, page_hinkley"),
    ({"on_reward_drift": "panic"}, "loops.hero.drift.on_reward_drift", "alert, explore, reset"),
    ({"window": 10}, "loops.hero.drift.window", ""),
    ({"explore_epsilon": 0.0}, "loops.hero.drift.explore_epsilon", "> 0"),
    ({"psi_threshold": -1}, "loops.hero.drift.psi_threshold", "> 0"),
    ({"delta": 2}, "loops.hero.drift.delta", "<= 1"),
    ({"explore_for": 0}, "loops.hero.drift.explore_for", ""),
    ({"sensitivity": 1}, "loops.hero.drift.sensitivity", "unknown key"),
])
def test_config_errors_name_the_key(drift, key, match):
    with pytest.raises(ConfigError) as exc:
        _config(**drift)
    assert exc.value.key == key and match in str(exc.value)
