"""Live figures of each model version against a real Redis: decisions served and rewards
joined per version, counted by the rank, reward, activate and sweep scripts themselves,
shown in the registry with the mean reward and its 95 % interval, dropped with the
version when the registry trims it."""
import math
import statistics
import time

import pytest

from bandits import make_policy
from service.app import create_app
from service.config import parse_config
from service.figures import Z95, live_figures, mean_interval
from service.store import keys

from .test_api import call
from .test_lifecycle import AS_ADMIN, KEYS, Traffic, _deploy, _get, _keyed
from .test_sessions import rank as step, shop

POLICY = {"type": "linucb", "alpha": 0.5, "epsilon": 0.05}


def _config(**models):
    return parse_config({
        "service": {"publish_events": 20, "publish_seconds": 0.5},
        "models": {"check_latency": "1s", **models},
        "loops": {"recs": {"policy": POLICY, "reward_wait": "1s", "default_reward": -0.5}}})


@pytest.fixture
def client(r):
    return create_app(_config(), r, keys=KEYS).test_client()


def _service(client):
    return client.application.extensions["cbserve"]["loops"]["recs"]


def _upload(client) -> int:
    res = call(client, "post", "/v1/loops/recs/models", data=make_policy(POLICY).to_bytes(),
               headers={**AS_ADMIN, "Content-Type": "application/octet-stream"})
    assert res.status_code == 201
    return res.get_json()["version"]


def _serve(client, version):
    """Deploy ``version`` and make the worker serve it now (not within its 0.5 s)."""
    assert _deploy(client, {"version": version, "force": True}).status_code == 200
    _service(client).model._checked = float("-inf")


def _rank(client, event_id, version, defer=False):
    with _keyed(client):
        res = call(client, "post", "/v1/loops/recs/rank",
                   json={"actions": ["a", "b"], "event_id": event_id, "defer": defer})
    assert res.status_code == 200 and res.get_json()["model"]["version"] == version


def _post(client, event_id, what, **body):
    res = call(client, "post", f"/v1/loops/recs/events/{event_id}/{what}", headers=AS_ADMIN, **body)
    assert res.status_code == 200, res.get_json()


def _figures(client, version):
    return _get(client, f"/v1/loops/recs/models/{version}").get_json()["figures"]


def test_each_version_counts_its_decisions_and_rewards_exactly(client, r):
    v1, v2 = _upload(client), _upload(client)
    _serve(client, v1)
    for eid in ("e1", "e2", "e3", "legacy"):
        _rank(client, eid, v1)
    _rank(client, "d1", v1, defer=True)
    _rank(client, "d2", v1, defer=True)  # never activated: expires, no reward
    _post(client, "e1", "reward", json={"value": 1})
    _post(client, "e2", "reward", json={"value": 0.5})
    _post(client, "d1", "reward", json={"value": 0.25})  # not joined until activated
    assert r.hget(keys.figures("recs"), f"{v1}:n") == b"2"
    _post(client, "d1", "activate")
    r.hdel(keys.event("recs", "legacy"), "v")  # as an event logged with no version
    _post(client, "legacy", "reward", json={"value": 7})
    _serve(client, v2)
    _rank(client, "f1", v2)
    _rank(client, "f2", v2)
    _post(client, "f1", "reward", json={"value": 1})
    _post(client, "e1", "reward", json={"value": 1})  # a repeat counts once
    time.sleep(1.1)
    assert _service(client).store.sweep() == (2, 1)  # e3 and f2 joined with -0.5, d2 expired
    raw = {k.decode(): v.decode() for k, v in r.hgetall(keys.figures("recs")).items()}
    assert raw == {f"{v1}:d": "6", f"{v1}:n": "4", f"{v1}:s": "1.25", f"{v1}:q": "1.5625",
                   f"{v2}:d": "2", f"{v2}:n": "2", f"{v2}:s": "0.5", f"{v2}:q": "1.25"}
    rewards = [1.0, 0.5, 0.25, -0.5]
    low, high = _interval(rewards)
    one = _figures(client, v1)
    assert (one["decisions"], one["rewards"], one["mean_reward"]) == (6, 4, 0.3125)
    assert one["low"] == pytest.approx(low, abs=1e-12) and one["high"] == pytest.approx(high, abs=1e-12)
    listed = _get(client, "/v1/loops/recs/models").get_json()["models"]
    assert [m["figures"] for m in listed] == [one, _figures(client, v2)]
    assert _figures(client, v2)["mean_reward"] == 0.25


def _interval(rewards):
    mean, sd = statistics.fmean(rewards), statistics.stdev(rewards)
    half = 1.96 * sd / math.sqrt(len(rewards))
    return mean - half, mean + half


@pytest.mark.parametrize("rewards", [[1.0, 0.0, 0.0, 1.0, 1.0], [0.3, -0.7, 2.5], [0.1] * 7])
def test_the_interval_is_the_normal_one_of_the_sample(rewards):
    mean, low, high = mean_interval(len(rewards), sum(rewards), sum(x * x for x in rewards))
    assert mean == pytest.approx(statistics.fmean(rewards), abs=1e-12)
    expected = _interval(rewards)
    assert (low, high) == pytest.approx(expected, abs=1e-12)
    assert low <= mean <= high and Z95 == 1.96


def test_no_reward_has_no_mean_and_one_reward_no_interval(client):
    v1 = _upload(client)
    assert _figures(client, v1) == live_figures(0, 0, 0.0, 0.0) == {
        "decisions": 0, "rewards": 0, "mean_reward": None, "low": None, "high": None}
    _serve(client, v1)
    _rank(client, "e1", v1)
    _post(client, "e1", "reward", json={"value": 0.75})
    assert _figures(client, v1) == {"decisions": 1, "rewards": 1, "mean_reward": 0.75,
                                    "low": None, "high": None}


def test_a_step_of_a_session_counts_for_its_version(r):
    client = create_app(shop({"type": "linucb"}), r).test_client()
    first = step(client, "u")
    step(client, "u")
    call(client, "post", f"/v1/loops/shop/events/{first['event_id']}/reward", json={"value": 2})
    assert r.hgetall(keys.figures("shop")) == {b"0:d": b"2", b"0:n": b"1", b"0:s": b"2", b"0:q": b"4"}


def test_a_trimmed_version_loses_its_figures(r):
    config = _config(keep=3)
    client = create_app(config, r, keys=KEYS).test_client()
    traffic = Traffic(client, config, r)
    served = []
    for n in range(1, 5):
        assert traffic.learn(5) == n
        _service(client).model._checked = float("-inf")
        _rank(client, f"e{n}", n)
        _post(client, f"e{n}", "reward", json={"value": 1})
        served.append(n)
    figures = keys.figures("recs")
    assert r.hmget(figures, keys.figure_fields(1)) == [None] * 4  # dropped by a publication
    assert all(r.hget(figures, f"{v}:d") for v in (2, 3, 4))
    assert _deploy(client, {"version": 2, "learn": False}).status_code == 200
    for _ in range(3):
        _upload(client)
    kept = [m["version"] for m in _get(client, "/v1/loops/recs/models").get_json()["models"]]
    assert kept == [2, 4, 7]
    assert r.hmget(figures, keys.figure_fields(3)) == [None] * 4  # dropped by an upload
    assert _figures(client, 2)["decisions"] >= 1 and _figures(client, 4)["rewards"] >= 1
