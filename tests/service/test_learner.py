"""End to end: rank -> reward -> learner -> a new version served by another app
instance; export read by Vowpal Wabbit; a learner killed mid-stream learns every
joined event exactly once."""
import gzip
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import redis
import vowpalwabbit

from bandits import load_policy
from service.app import create_app
from service.cli import main as cbserve
from service.learner import Learner, LoopLearner
from service.store import LoopStore, keys

from tests.conftest import RECS_ITEMS

CONTEXTS = [{"user": {"age": float(a), "country": c}} for a in (20, 40, 60) for c in ("FR", "DE")]


def _traffic(client, n, rng, loop="recs"):
    """n rank + reward round trips; reward 1 for cheap items (price < 3), else 0."""
    out = []
    for _ in range(n):
        body = {"context": CONTEXTS[int(rng.integers(len(CONTEXTS)))]}
        if loop == "recs":
            body["actions"] = [RECS_ITEMS[j] for j in rng.choice(len(RECS_ITEMS), 8, replace=False)]
        res = client.post(f"/v1/loops/{loop}/rank", json=body).get_json()
        price = next((a["features"]["item"]["price"] for a in body.get("actions", [])
                      if a["id"] == res["chosen"]), 0.0)
        value = 1.0 if price < 3 else 0.0
        assert client.post(f"/v1/loops/{loop}/events/{res['event_id']}/reward",
                           json={"value": value}).status_code == 200
        out.append((res, value))
    return out


def test_rank_reward_learn_and_a_second_worker_serves_the_new_version(config, r, redis_server, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    worker1 = create_app(config, r).test_client()
    worker2 = create_app(config, redis.Redis.from_url(redis_server.url)).test_client()
    assert worker2.get("/v1/loops/recs").get_json()["model"]["version"] == 0
    sent = _traffic(worker1, 60, rng)
    learner = LoopLearner(r, config.loops["recs"], config)
    while learner.step():
        pass
    learner.publish()
    version = learner.version
    assert version >= 1 and learner.policy.n_learned == 60
    deadline = time.monotonic() + 1.0  # every worker serves it within one second
    while worker2.post("/v1/loops/recs/rank", json={"actions": RECS_ITEMS[:4]}).get_json()["model"]["version"] != version:
        assert time.monotonic() < deadline, "worker 2 did not pick up the new version within 1 s"
        time.sleep(0.05)
    log = [json.loads(f[b"j"]) for _, f in r.xrange(keys.log("recs"))]
    by_id = {e["EventId"]: e for e in log}
    for res, _ in sent:
        assert by_id[res["event_id"]]["p"][0] == res["probability"]  # logged = returned

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    cfg = tmp_path / "c.toml"
    cfg.write_text(_toml(publish_events=20))
    out = tmp_path / "recs.dsjson.gz"
    assert cbserve(["export", "--config", str(cfg), "--loop", "recs", "-o", str(out)]) == 0
    lines = gzip.open(out, "rt").read().splitlines()
    assert len(lines) == len(log)
    labelled = [json.loads(line) for line in lines if "_label_cost" in line]
    assert len(labelled) == 60 and {-e["_label_cost"] for e in labelled} <= {0.0, 1.0}
    vw = vowpalwabbit.Workspace("--cb_explore_adf --dsjson --quiet")
    for line in lines:
        examples = vw.parse(line, vowpalwabbit.LabelType.CONTEXTUAL_BANDIT)
        vw.learn(examples)
        vw.finish_example(examples)
    vw.finish()


def _toml(publish_events=20, lock="1s"):
    return f"""
[service]
publish_events = {publish_events}
publish_seconds = 0.3
learner_lock = "{lock}"
[loops.hero]
actions = ["hero-a", "hero-b", "hero-c", "hero-d"]
policy = {{ type = "epsilon_greedy", epsilon = 0.2, model = "disjoint" }}
featurizer = {{ context_dim = 8, interaction_dim = 0, action_id = false }}
reward_wait = "1h"
[loops.recs]
policy = {{ type = "linucb", alpha = 0.5, epsilon = 0.05 }}
featurizer = {{ context_dim = 16, action_dim = 8, interaction_dim = 8 }}
reward_wait = "30s"
default_reward = -1.0
seed = 2
"""


def test_learner_killed_mid_stream_learns_every_event_exactly_once(config, r, redis_server, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(_toml(publish_events=10_000))  # publish on time only (0.3 s)
    env = {**os.environ, "REDIS_URL": redis_server.url}
    client = create_app(config, r).test_client()
    rng = np.random.default_rng(1)

    def start():
        return subprocess.Popen([sys.executable, "-m", "service.cli", "learner", "--config", str(cfg)],
                                env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "learner.log", "a"))

    proc = start()
    sent, deadline = 0, time.monotonic() + 30
    # kill it once it has published and also holds events learned but not yet published
    while not (LoopStore(r, config.loops["hero"]).model_version() >= 1 and _pending(r) > 0):
        assert time.monotonic() < deadline, "the learner never got under way"
        sent += len(_traffic(client, 5, rng, loop="hero"))
    proc.send_signal(signal.SIGKILL)  # no chance to publish or release its lock
    proc.wait()
    assert _pending(r) > 0
    sent += len(_traffic(client, 100, rng, loop="hero"))  # joined while no learner runs
    proc = start()
    try:
        deadline = time.monotonic() + 30
        while True:
            meta = LoopStore(r, config.loops["hero"]).model_meta()
            if _pending(r) == 0 and meta.get("last_id") == _last_joined(r):
                break
            assert time.monotonic() < deadline, "the restarted learner did not catch up"
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    store = LoopStore(r, config.loops["hero"])
    policy = load_policy(store.model_bytes(store.model_version()))
    assert policy.n_learned == sent == r.xlen(keys.joined("hero"))  # none lost, none twice
    assert store.stats()["learned"] == sent


def _pending(r):
    """Joined events the learner has read but no published model holds yet."""
    groups = r.xinfo_groups(keys.joined("hero"))
    return groups[0]["pending"] if groups else 0


def _last_joined(r):
    (sid, _), = r.xrevrange(keys.joined("hero"), count=1)
    return sid.decode()


def test_learner_thread_publishes_on_cadence_and_on_stop(config, r):
    client = create_app(config, r).test_client()
    _traffic(client, 10, np.random.default_rng(2), loop="hero")
    learner = Learner(r, config)
    import threading
    thread = threading.Thread(target=learner.run, kwargs={"idle_s": 0.01})
    thread.start()
    deadline = time.monotonic() + 5
    while LoopStore(r, config.loops["hero"]).model_version() < 1:  # 10 < 20 events: time cadence
        assert time.monotonic() < deadline
        time.sleep(0.02)
    _traffic(client, 3, np.random.default_rng(3), loop="hero")
    learner.stop()
    thread.join(timeout=10)
    store = LoopStore(r, config.loops["hero"])
    assert load_policy(store.model_bytes(store.model_version())).n_learned == 13
    assert r.get(keys.learner_lock("hero")) is None  # released on a clean stop


def test_an_event_the_policy_refuses_is_skipped_and_counted_not_a_stuck_learner(config, r):
    """A logged event with a feature past 1e15 (written before that limit existed) is
    skipped, counted as unlearnable, and the events around it are learned once."""
    client = create_app(config, r).test_client()
    rng = np.random.default_rng(5)
    _traffic(client, 4, rng)
    store = LoopStore(r, config.loops["recs"])
    _, fields = r.xrange(keys.log("recs"))[-1]
    legacy = json.loads(fields[b"j"])
    legacy["EventId"] = "legacy-1"
    legacy["c"]["user"]["age"] = 1e299
    store.log_decision("legacy-1", json.dumps(legacy).encode(), False, 0.001, version=0,
                       action="legacy", propensity=0.5, explored=False)
    assert client.post("/v1/loops/recs/events/legacy-1/reward", json={"value": 1.0}).status_code == 200
    _traffic(client, 4, rng)
    learner = LoopLearner(r, config.loops["recs"], config)
    while learner.step():
        pass
    learner.publish()
    assert learner.policy.n_learned == 8
    assert float(r.hget(keys.stats("recs"), "unlearnable")) == 1
    assert r.xinfo_groups(keys.joined("recs"))[0]["pending"] == 0
    served = load_policy(store.model_bytes(store.model_version()))
    assert np.isfinite(served.decide(CONTEXTS[0], RECS_ITEMS[:4]).scores).all()
    summary = client.get("/v1/loops/recs").get_json()
    assert summary["counters"]["unlearnable"] == 1
    assert 'cbserve_unlearnable_total{loop="recs"} 1.0' in client.get("/metrics").get_data(as_text=True)


def test_a_new_model_version_keeps_the_workers_featurizer_memos(config, r):
    """Loading a published version keeps the featurized catalogue (same featurizer
    configuration) and decides exactly as a fresh load of that version."""
    app = create_app(config, r)
    client, served = app.test_client(), app.extensions["cbserve"]["loops"]["recs"].model
    _traffic(client, 20, np.random.default_rng(7))
    before = served.policy.featurizer
    assert before._act._by_id  # the catalogue items seen so far are memoised
    learner = LoopLearner(r, config.loops["recs"], config)
    while learner.step():
        pass
    learner.publish()
    assert served.refresh() and served.version == learner.version
    assert served.policy.featurizer is before
    fresh = load_policy(LoopStore(r, config.loops["recs"]).model_bytes(learner.version))
    assert fresh.featurizer is not before
    for ctx in CONTEXTS:
        d, expected = served.policy.decide(ctx, RECS_ITEMS[:6]), fresh.decide(ctx, RECS_ITEMS[:6])
        assert np.array_equal(d.pmf, expected.pmf) and np.array_equal(d.scores, expected.scores)


def test_a_published_model_that_cannot_be_loaded_leaves_ranks_on_the_current_one(config, r, caplog):
    app = create_app(config, r)
    client, served = app.test_client(), app.extensions["cbserve"]["loops"]["recs"].model
    _traffic(client, 10, np.random.default_rng(8))
    learner = LoopLearner(r, config.loops["recs"], config)
    while learner.step():
        pass
    learner.publish()
    assert served.refresh() and served.version == 1
    good = r.get(keys.model_version("recs", 1))
    r.set(keys.model_version("recs", 2), b"not a snapshot")
    r.hset(keys.serving("recs"), "version", 2)  # the serving pointer, as a deploy moves it
    served._checked = float("-inf")  # check now, not in 0.5 s
    res = client.post("/v1/loops/recs/rank", json={"actions": RECS_ITEMS[:4]})
    assert res.status_code == 200 and res.get_json()["model"]["version"] == 1
    assert "model version 2 cannot be loaded, still serving version 1" in caplog.text
    r.set(keys.model_version("recs", 3), good)
    r.hset(keys.serving("recs"), "version", 3)
    served._checked = float("-inf")
    assert client.post("/v1/loops/recs/rank", json={"actions": RECS_ITEMS[:4]}).get_json()["model"]["version"] == 3


def test_a_loop_whose_model_cannot_be_loaded_does_not_stop_the_others(config, r, caplog):
    from service.models import spec_text

    r.set(keys.model_version("recs", 1), b"not a snapshot")
    r.hset(keys.model("recs"), mapping={"version": 1, "spec": spec_text(config.loops["recs"])})
    client = create_app(config, r).test_client()
    _traffic(client, 10, np.random.default_rng(9), loop="hero")
    learner = Learner(r, config)
    import threading
    thread = threading.Thread(target=learner.run, kwargs={"idle_s": 0.01})
    thread.start()
    try:
        for want in (1, 2):  # hero keeps learning and publishing while recs is parked
            deadline = time.monotonic() + 5
            while LoopStore(r, config.loops["hero"]).model_version() < want:
                assert time.monotonic() < deadline and thread.is_alive()
                time.sleep(0.02)
            assert thread.is_alive()
            _traffic(client, 5, np.random.default_rng(10 + want), loop="hero")
    finally:
        learner.stop()
        thread.join(timeout=10)
    assert LoopStore(r, config.loops["recs"]).model_version() == 1  # untouched
    assert caplog.text.count("loop recs: not learning, retrying every 30 s") == 1


def test_a_restarted_learner_pages_through_more_pending_entries_than_one_read(r):
    """1,200 entries read but never published (publish_events above the read batch of
    500): after a restart each is learned exactly once, none acknowledged unlearned."""
    from tests.conftest import make_config
    config = make_config(publish_events=5000, publish_seconds=3600)
    client = create_app(config, r).test_client()
    for _ in range(1200):
        res = client.post("/v1/loops/hero/rank", json={}).get_json()
        client.post(f"/v1/loops/hero/events/{res['event_id']}/reward", json={"value": 1.0})
    first = LoopLearner(r, config.loops["hero"], config)
    while first.step():
        pass  # reads all 1,200, publishes nothing (due at 5,000 events or an hour)
    assert r.xpending(keys.joined("hero"), keys.LEARNER_GROUP)["pending"] == 1200
    r.delete(keys.learner_lock("hero"))  # the first learner died
    second = LoopLearner(r, config.loops["hero"], config)
    learned = 0
    while (n := second.step()):
        learned += n
    assert learned == 1200
    second.publish()
    meta = json.loads(r.hget(keys.registry("hero"), second.version))
    assert meta["events_learned"] == 1200
    assert r.xpending(keys.joined("hero"), keys.LEARNER_GROUP)["pending"] == 0
