"""Loop health against a real Redis: the per-minute buckets the rank and join scripts
write, ``GET /v1/loops/<loop>/health`` over them (exact figures, the previous window,
series, every status rule by its code), the same figures on ``/metrics``, and the
buckets surviving a Redis restart."""
import json
import statistics
import time

import pytest

from service.api.metrics import HEALTH_METRICS
from service.app import create_app
from service.config import parse_config
from service.figures import Z95
from service.health import series_step
from service.health_status import REASONS
from service.learner import LoopLearner
from service.store import LoopStore, connect, keys
from service.testing.redis_server import RedisServer

from tests.conftest import RECS_ITEMS
from .test_api import call
from .test_lifecycle import AS_ADMIN, DECIDE, KEYS

HERO = ["hero-a", "hero-b", "hero-c", "hero-d"]


def _config(**health):
    return parse_config({
        "service": {"publish_events": 1000, "publish_seconds": 60},
        "models": {"check_latency": "1s"},
        "loops": {
            "hero": {"actions": HERO, "policy": {"type": "epsilon_greedy", "epsilon": 0.2},
                     "reward_wait": "300ms", "default_reward": -0.5, "seed": 1,
                     "health": {"retention": "7d", **health}},
            "recs": {"policy": {"type": "linucb", "alpha": 0.5, "epsilon": 0.5},
                     "featurizer": {"context_dim": 16, "action_dim": 8, "interaction_dim": 8},
                     "reward_wait": "30s", "seed": 2}}})


def _app(r, **health):
    return create_app(_config(**health), r, keys=KEYS).test_client()


def _health(client, loop="hero", window=None):
    query = {"window": window} if window is not None else {}
    return call(client, "get", f"/v1/loops/{loop}/health", headers=AS_ADMIN, query_string=query)


def _store(client, loop="hero"):
    return client.application.extensions["cbserve"]["loops"][loop].store


def _fresh_minute():
    """Wait for a new minute when this one is nearly over: a test's writes then share one bucket."""
    if time.time() % 60 > 50:
        time.sleep(60.5 - time.time() % 60)
    return int(time.time()) // 60


def _log(store, event_id, action, version, p, explored, deferred=False, latency=0.001):
    store.log_decision(event_id, b'{"EventId": "%s"}' % event_id.encode(), deferred, latency,
                       version=version, action=action, propensity=p, explored=explored)


def _interval(values):
    n, mean = len(values), statistics.fmean(values)
    half = Z95 * statistics.stdev(values) / n ** 0.5
    return mean, mean - half, mean + half


def test_exact_figures_after_ranks_rewards_defaults_and_activations(r):
    client = _app(r)
    store = _store(client)
    minute = _fresh_minute()
    # (event, action, version, propensity, explored, deferred, latency)
    for e, a, v, p, x, d, lat in [("e0", "hero-a", 1, 0.7, False, False, 0.002),
                                  ("e1", "hero-b", 1, 0.1, True, False, 0.010),
                                  ("e2", "hero-a", 1, 0.7, False, True, 0.003),
                                  ("e3", "hero-c", 1, 0.2, True, False, 0.004),
                                  ("e4", "hero-b", 2, 0.6, False, False, 0.001),
                                  ("e5", "hero-a", 2, 0.05, True, False, 0.005),
                                  ("e6", "hero-c", 2, 0.3, True, True, 0.002)]:
        _log(store, e, a, v, p, x, d, lat)
    assert store.reward("e0", 1.0) == "ok" and store.reward("e1", 0.0) == "ok"
    assert store.reward("e2", 0.5) == "ok"         # deferred: joined once activated
    assert _health(client).get_json()["rewards"] == 2
    assert store.activate("e2") == "ok" and store.activate("e6") == "ok"
    assert store.reward("e4", 2.0) == "ok" and store.reward("e5", 1.0) == "ok"
    assert store.reward("e5", 1.0) == "same"       # a repeat counts once
    time.sleep(0.4)
    assert store.sweep() == (2, 0)                 # e3 and e6 joined with -0.5

    bucket = r.hgetall(keys.bucket("hero", minute))
    assert bucket[b"ac"] == b"2" and bucket[b"df"] == b"2" and bucket[b"nd"] == b"2"
    assert (bucket[b"lu"], bucket[b"lx"]) == (b"27000", b"10000")  # microseconds
    h = _health(client, window="15m").get_json()
    assert h["loop"] == "hero" and h["window"] == 900 and h["status"] == "ok"
    assert (h["decisions"], h["rewards"]) == (7, 7)
    assert h["join_rate"] == 1.0 and h["default_rate"] == pytest.approx(2 / 7, abs=1e-12)
    assert h["exploration_share"] == pytest.approx(4 / 7, abs=1e-12)
    assert h["min_propensity"] == 0.05
    assert h["latency_ms"]["mean"] == pytest.approx(27 / 7, rel=1e-12)
    assert h["latency_ms"]["max"] == pytest.approx(10.0, rel=1e-12)
    rewards = {1: [1.0, 0.0, 0.5, -0.5], 2: [2.0, 1.0, -0.5]}
    mean, low, high = _interval(rewards[1] + rewards[2])
    assert h["reward"]["n"] == 7
    for key, x in zip(("mean", "low", "high"), (mean, low, high)):
        assert h["reward"][key] == pytest.approx(x, abs=1e-12)
    assert h["previous"] == {"mean": None, "low": None, "high": None, "n": 0}
    assert [(v["version"], v["decisions"], v["rewards"]) for v in h["versions"]] == [(1, 4, 4), (2, 3, 3)]
    for row in h["versions"]:
        for key, x in zip(("mean", "low", "high"), _interval(rewards[row["version"]])):
            assert row[key] == pytest.approx(x, abs=1e-12)
    assert [(a["id"], a["decisions"], a["rewards"]) for a in h["actions"]] == [
        ("hero-a", 3, 3), ("hero-b", 2, 2), ("hero-c", 2, 2)]
    by_id = {a["id"]: a for a in h["actions"]}
    assert by_id["hero-a"]["share"] == pytest.approx(3 / 7, abs=1e-12)
    assert by_id["hero-a"]["mean"] == pytest.approx(2.5 / 3, abs=1e-12)
    assert by_id["hero-b"]["mean"] == 1.0 and by_id["hero-c"]["mean"] == -0.5
    assert h["learner_lag"] == 7 and h["staleness_s"] is None  # no learner has read yet
    assert (h["serving_version"], h["learning"], h["drift"]) == (0, True, {})
    # the series: one point per minute, the last holding everything
    s = h["series"]
    assert len(s["minute"]) == 15 and s["step"] == 60 and s["minute"][-1] == minute * 60
    assert s["decisions"][-1] == 7 and sum(s["decisions"]) == 7 and s["rewards"][-1] == 7
    assert s["mean_reward"][-1] == pytest.approx(mean, abs=1e-12) and s["mean_reward"][0] is None
    assert s["join_rate"][-1] == 1.0 and s["exploration_share"][-1] == pytest.approx(4 / 7)
    assert set(s["by_version"]) == {"1", "2"} and set(s["by_action"]) == {"hero-a", "hero-b", "hero-c"}
    assert s["by_version"]["2"]["mean_reward"][-1] == pytest.approx(2.5 / 3, abs=1e-12)
    assert s["by_action"]["hero-b"]["share"][-1] == pytest.approx(2 / 7, abs=1e-12)
    assert all(len(s[k]) == 15 for k in ("decisions", "rewards", "low", "high", "join_rate"))


def test_buckets_expire_within_the_retention(r):
    client = _app(r, retention="2h")
    event = call(client, "post", "/v1/loops/hero/rank", json={}, headers={"X-API-Key": DECIDE})
    call(client, "post", f"/v1/loops/hero/events/{event.get_json()['event_id']}/reward",
         json={"value": 1.0}, headers={"X-API-Key": DECIDE})
    buckets = list(r.scan_iter(keys.bucket("hero", "*")))
    assert buckets
    assert all(0 < r.ttl(b) <= 7200 for b in buckets)


def test_the_rank_path_counts_what_it_answered(r):
    """Through the real rank route: explored = chosen below the pmf's largest probability;
    the smallest propensity and the per-action counts are those of the answers."""
    client = _app(r)
    _fresh_minute()
    answers = [call(client, "post", "/v1/loops/recs/rank", headers={"X-API-Key": DECIDE},
                    json={"context": {"user": {"age": i}}, "actions": RECS_ITEMS[:6],
                          "event_id": f"e{i}"}).get_json()
               for i in range(40)]
    explored = sum(a["probability"] < max(x["probability"] for x in a["ranking"]) for a in answers)
    h = _health(client, "recs").get_json()
    assert h["decisions"] == 40 and 0 < explored < 40
    assert h["exploration_share"] == pytest.approx(explored / 40, abs=1e-12)
    assert h["min_propensity"] == min(a["probability"] for a in answers)
    counts = {}
    for a in answers:
        counts[a["chosen"]] = counts.get(a["chosen"], 0) + 1
    assert {a["id"]: a["decisions"] for a in h["actions"]} == counts
    assert h["versions"] == [{"version": 0, "decisions": 40, "rewards": 0, "mean": None,
                              "low": None, "high": None}]


def test_a_bucket_counts_at_most_max_actions_ids_and_the_rest_as_other(r):
    client = _app(r, max_actions=2)
    store = _store(client)
    minute = _fresh_minute()
    for i, a in enumerate(["a", "b", "c", "a", "d", "c"]):
        _log(store, f"e{i}", a, 1, 0.5, False)
    for i in range(6):
        store.reward(f"e{i}", float(i))
    bucket = r.hgetall(keys.bucket("hero", minute))
    assert {k: v for k, v in bucket.items() if k.startswith(b"ad:")} == {
        b"ad:a": b"2", b"ad:b": b"1", b"ad:_other": b"3"}
    h = _health(client).get_json()
    assert [(a["id"], a["decisions"], a["rewards"], a["mean"]) for a in h["actions"]] == [
        ("_other", 3, 3, (2 + 4 + 5) / 3), ("a", 2, 2, 1.5), ("b", 1, 1, 1.0)]


def _write(r, loop, minute, **fields):
    """Write a bucket by hand (in a loop that has a decision log and counters)."""
    if not r.exists(keys.log(loop)):
        r.xadd(keys.log(loop), {"j": "{}"})
    r.hsetnx(keys.stats(loop), "decisions", 0)
    r.hset(keys.bucket(loop, minute), mapping={k.replace("_", ":", 1) if k[:2] in ("vd", "vn", "vs", "vq")
                                               else k: v for k, v in fields.items()})


def _sums(values):
    return {"n": len(values), "s": repr(sum(values)), "q": repr(sum(x * x for x in values))}


def test_the_previous_window_and_a_reward_drop(r):
    client = _app(r)
    now = _fresh_minute()
    before = [1.0] * 90 + [0.0] * 10
    after = [1.0] * 40 + [0.0] * 60
    _write(r, "hero", now - 20, d=100, **_sums(before))  # in the previous 15 minutes
    _write(r, "hero", now - 35, d=100, **_sums([0.0] * 100))  # older than both windows
    _write(r, "hero", now - 3, d=100, **_sums(after))
    h = _health(client, window="15m").get_json()
    mean, low, high = _interval(before)
    assert h["previous"]["n"] == 100
    for key, x in zip(("mean", "low", "high"), (mean, low, high)):
        assert h["previous"][key] == pytest.approx(x, abs=1e-12)
    assert h["reward"]["mean"] == pytest.approx(0.4, abs=1e-12)
    assert h["status"] == "warn" and [x["code"] for x in h["reasons"]] == ["reward_drop"]
    # a window just as good as the one before: no drop
    _write(r, "hero", now - 3, d=100, **_sums(before))
    assert _health(client, window="15m").get_json()["reasons"] == []


def _codes(client, **kw):
    h = _health(client, **kw).get_json()
    return h["status"], [x["code"] for x in h["reasons"]]


def test_each_status_rule_fires_with_its_code(r):
    client = _app(r, min_join_rate=0.5, max_learner_lag=2, max_staleness="1h")
    now = _fresh_minute()
    assert _codes(client) == ("ok", [])
    _write(r, "hero", now - 1, d=99, n=10, s="5", q="5")
    assert _codes(client) == ("ok", [])  # under 100 decisions: no join rate alert
    _write(r, "hero", now - 1, d=150)
    assert _codes(client) == ("alert", ["join_rate_low"])
    _write(r, "hero", now - 1, d=20)
    assert _codes(client) == ("ok", [])

    r.hset(keys.drift("hero"), mapping={
        "reward": json.dumps({"detector": "adwin", "state": "drift"}),
        "context": json.dumps({"namespaces": {"user": {"psi": 0.4, "drifted": True},
                                              "device": {"psi": 0.01, "drifted": False}},
                               "drifted": True}),
        "actions": json.dumps({"psi": 0.3, "drifted": True}),
        "state": b"\x80\x05not json"})
    status, codes = _codes(client)
    assert status == "alert" and codes == ["reward_drift", "context_drift", "actions_drift"]
    h = _health(client).get_json()
    assert h["drift"]["context"]["namespaces"]["user"]["psi"] == 0.4 and "state" not in h["drift"]
    assert "user" in h["reasons"][1]["message"] and "device" not in h["reasons"][1]["message"]
    r.hset(keys.drift("hero"), mapping={"reward": json.dumps({"state": "ok"}),
                                        "actions": json.dumps({"psi": 0.0, "drifted": False})})
    assert _codes(client) == ("warn", ["context_drift"])
    r.delete(keys.drift("hero"))

    for i in range(3):  # joined, never learned: lag 3 > 2
        _log(_store(client), f"e{i}", "hero-a", 0, 0.25, False)
        _store(client).reward(f"e{i}", 1.0)
    assert _codes(client) == ("warn", ["learner_lag"])
    r.delete(keys.joined("hero"))

    r.hset(keys.model("hero"), mapping={"version": 1, "created": repr(time.time() - 7200)})
    assert _codes(client) == ("warn", ["model_stale"])
    r.hset(keys.serving("hero"), mapping={"version": 1, "learn": 0})  # pinned: never stale
    assert _codes(client) == ("ok", [])

    r.delete(keys.log("hero"))  # the loop has served, its decision log is gone
    status, codes = _codes(client)
    assert status == "alert" and codes == ["data_missing"]
    assert set(REASONS) >= {"join_rate_low", "reward_drift", "data_missing", "learner_lag",
                            "model_stale", "context_drift", "actions_drift", "reward_drop"}


def test_learner_lag_counts_pending_and_unread_and_staleness_follows_publication(r):
    config = _config()
    client = create_app(config, r, keys=KEYS).test_client()
    for _ in range(5):
        event = client.post("/v1/loops/hero/rank", json={}, headers={"X-API-Key": DECIDE})
        _store(client).reward(event.get_json()["event_id"], 1.0)
    r.xgroup_create(keys.joined("hero"), keys.LEARNER_GROUP, id="0")
    r.xreadgroup(keys.LEARNER_GROUP, "learner", {keys.joined("hero"): ">"}, count=2)
    assert _health(client).get_json()["learner_lag"] == 5  # 2 pending + 3 unread
    r.xack(keys.joined("hero"), keys.LEARNER_GROUP,
           *[sid for sid, _ in r.xrange(keys.joined("hero"), count=2)])
    assert _health(client).get_json()["learner_lag"] == 3
    learner = LoopLearner(r, config.loops["hero"], config)
    assert learner.step() == 3
    assert _health(client).get_json()["learner_lag"] == 3  # learned, not yet published
    assert learner.publish() == 1
    h = _health(client).get_json()
    assert h["learner_lag"] == 0 and 0 <= h["staleness_s"] < 5


def test_series_of_a_day_in_five_minute_points_and_a_week_in_hours(r):
    client = _app(r)
    now = _fresh_minute()
    for back, d in [(0, 3), (1, 4), (700, 5), (1439, 6), (1440, 100)]:
        _write(r, "hero", now - back, d=d, n=d, s=repr(d * 0.5), q=repr(d * 0.25))
    h = _health(client, window="1d").get_json()
    s = h["series"]
    assert series_step(1440) == 5 and s["step"] == 300
    first = now - 1439
    assert s["minute"][0] == first * 60
    assert all(m % 300 == 0 for m in s["minute"][1:])
    assert len(s["minute"]) == 288 + (first % 5 != 0)
    assert all(len(s[k]) == len(s["minute"]) for k in ("decisions", "rewards", "mean_reward", "low",
                                                     "high", "join_rate", "exploration_share"))
    assert h["decisions"] == sum(s["decisions"]) == 18 and s["decisions"][0] == 6
    assert s["decisions"][-1] == 7 or (s["decisions"][-1], s["decisions"][-2]) == (3, 4)
    assert h["previous"]["n"] == 100
    week = _health(client, window="7d").get_json()["series"]
    assert week["step"] == 3600 and len(week["minute"]) <= 169
    assert sum(week["decisions"]) == 118
    assert len(_health(client, window="6h").get_json()["series"]["minute"]) == 360


@pytest.mark.parametrize("window, message", [
    ("", "is not a duration"), ("0m", "is not a duration"), ("1.5h", "is not a duration"),
    ("90s", "is not a duration"), ("abc", "is not a duration"), ("-1h", "is not a duration"),
    ("8d", "longer than the buckets are kept (health.retention = 7d)")])
def test_a_bad_window_is_a_400_naming_it(r, window, message):
    res = _health(_app(r), window=window)
    assert res.status_code == 400
    assert res.get_json()["error"]["message"].startswith("window: ") and message in res.get_json()["error"]["message"]


def test_unknown_loop_404_and_the_admin_role(r):
    client = _app(r)
    assert call(client, "get", "/v1/loops/nope/health", headers=AS_ADMIN).status_code == 404
    assert call(client, "get", "/v1/loops/hero/health", headers={"X-API-Key": DECIDE}).status_code == 403
    assert call(client, "get", "/v1/loops/hero/health").status_code == 401


def test_metrics_export_every_health_figure(r):
    client = _app(r, max_learner_lag=1)
    store = _store(client)
    for i in range(3):
        _log(store, f"e{i}", HERO[i], 1, 0.25, i == 0)
        store.reward(f"e{i}", float(i))
    r.hset(keys.model("hero"), mapping={"version": 1, "created": repr(time.time() - 10)})
    r.hset(keys.drift("hero"), "reward", json.dumps({"state": "drift"}))
    _write(r, "hero", int(time.time()) // 60 - 90, d=10, **_sums([1.0] * 5 + [0.0] * 5))
    text = call(client, "get", "/metrics", headers=AS_ADMIN).get_data(as_text=True)
    for name in HEALTH_METRICS:
        assert f"# TYPE {name} gauge" in text, name
        assert f"\n{name}{{" in text, f"{name} has no sample"
    assert 'cbserve_health_status{loop="hero"} 2.0' in text
    assert 'cbserve_health_reason{code="reward_drift",level="alert",loop="hero"} 1.0' in text
    assert 'cbserve_health_reason{code="learner_lag",level="warn",loop="hero"} 1.0' in text
    assert 'cbserve_window_decisions{loop="hero"} 3.0' in text
    assert 'cbserve_window_exploration_share{loop="hero"} 0.3333333333333333' in text
    assert 'cbserve_drift_detected{kind="reward",loop="hero"} 1.0' in text
    assert 'cbserve_drift_detected{kind="context",loop="hero"} 0.0' in text
    assert 'cbserve_window_action_share{action="hero-a",loop="hero"}' in text
    assert 'cbserve_window_version_mean_reward{loop="hero",version="1"} 1.0' in text
    assert 'cbserve_window_min_propensity{loop="recs"}' not in text  # no decision: no sample


def test_buckets_survive_a_redis_restart_and_redis_down_is_a_503():
    with RedisServer(appendonly=True) as server:
        client = create_app(_config(), connect(server.url), keys=KEYS).test_client()
        _fresh_minute()
        store = _store(client)
        for i in range(4):
            _log(store, f"e{i}", HERO[i % 2], 0, 0.5, bool(i % 2))
        store.reward("e0", 1.0)
        store.reward("e1", 0.0)
        before = _health(client).get_json()
        server.kill()
        down = _health(client)
        assert down.status_code == 503 and down.get_json()["error"]["code"] == "store_unavailable"
        server.start()
        after = _health(client).get_json()
        for key in ("decisions", "rewards", "exploration_share", "min_propensity", "reward",
                    "versions", "actions", "latency_ms", "status"):
            assert after[key] == before[key], key
        assert (after["decisions"], after["rewards"]) == (4, 2)
