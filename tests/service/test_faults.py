"""Redis faults: killed (SIGKILL) under a running app, every route answers a 503 that
says nothing was stored; restarted from its append-only file, the same app and the
same learner carry on by themselves, and nothing acknowledged before the kill is lost."""
import contextlib
import threading
import time

import pytest

from bandits import dsjson
from service.app import create_app
from service.learner import Learner, LoopLearner
from service.store import connect, keys, stream_entries
from service.testing.redis_server import RedisServer

from tests.conftest import RECS_ITEMS, make_config
from .test_api import call

RANK = "/v1/loops/recs/rank"
GOOD = {"context": {"user": {"age": 31}}, "actions": RECS_ITEMS[:5]}


@pytest.fixture
def crashable():
    with RedisServer(appendonly=True) as server:
        yield server


def _reward(app, event_id, value=1.0):
    return call(app, "post", f"/v1/loops/recs/events/{event_id}/reward", json={"value": value})


def test_redis_killed_gives_503s_then_the_same_app_recovers(crashable):
    client = connect(crashable.url)
    app = create_app(make_config(), client).test_client()
    before = [call(app, "post", RANK, json=GOOD).get_json()["event_id"] for _ in range(5)]
    assert _reward(app, before[0]).status_code == 200

    crashable.kill()
    down = [call(app, "post", RANK, json=GOOD), _reward(app, before[1]),
            call(app, "post", f"/v1/loops/recs/events/{before[2]}/activate"),
            call(app, "get", "/v1/loops/recs"), call(app, "get", "/healthz")]
    for res in down:
        assert res.status_code == 503, res.get_data(as_text=True)
        assert res.get_json()["error"]["code"] == "store_unavailable"
    for res in down[:4]:
        assert res.headers["Retry-After"] == "1"
        assert "Redis unreachable" in res.get_json()["error"]["message"]
        assert "nothing was stored" in res.get_json()["error"]["message"]

    crashable.start()  # same port, same append-only file; the app is not restarted
    assert call(app, "get", "/healthz").status_code == 200
    after = call(app, "post", RANK, json=GOOD)
    assert after.status_code == 200
    # every decision acknowledged before the kill survived it, and can be rewarded
    assert _reward(app, before[0]).get_json()["status"] == "duplicate"
    assert all(_reward(app, e).get_json()["status"] == "accepted" for e in before[1:])
    logged = {e["EventId"] for e in _log(client)}
    assert logged == set(before) | {after.get_json()["event_id"]}
    assert client.hget(keys.stats("recs"), "rewards") == b"5"


def _log(client):
    return [dsjson.loads(f[b"j"]) for _, f in stream_entries(client, keys.log("recs"))]


@contextlib.contextmanager
def _service_and_learner(crashable):
    """``(app, client)`` of the recs loop on ``crashable``, a learner running beside it
    (stopped on the way out)."""
    config = make_config(publish_events=5, publish_seconds=0.2)
    client = connect(crashable.url)
    learner = Learner(connect(crashable.url), config)
    thread = threading.Thread(target=learner.run, daemon=True)
    thread.start()
    try:
        yield create_app(config, client).test_client(), client, thread
    finally:
        learner.stop()
        thread.join(10)


def test_the_learner_rides_out_a_redis_crash(crashable):
    with _service_and_learner(crashable) as (app, client, thread):
        version = _learned(app, client, 10)
        crashable.kill()
        time.sleep(0.5)  # the learner's reads fail meanwhile; it must not die
        assert thread.is_alive()
        crashable.start()
        assert _learned(app, client, 10) > version
        assert thread.is_alive()
        assert client.hget(keys.stats("recs"), "learned") == b"20"


def _learned(app, client, n):
    """Rank and reward ``n`` events; wait (5 s at most) until all are learned and a
    version holding them is published; return that version."""
    target = int(client.hget(keys.stats("recs"), "learned") or 0) + n
    for _ in range(n):
        event = call(app, "post", RANK, json=GOOD).get_json()["event_id"]
        assert _reward(app, event).status_code == 200
    deadline = time.monotonic() + 5
    while int(client.hget(keys.stats("recs"), "learned") or 0) < target:
        assert time.monotonic() < deadline, "the learner did not catch up"
        time.sleep(0.05)
    time.sleep(0.4)  # publish_seconds
    return int(client.hget(keys.model("recs"), "version") or 0)


def test_a_cycle_cut_short_by_redis_is_learned_again_and_only_once(r):
    """A learner whose cycle failed after reading entries (they sit in its pending list,
    learned in memory, unpublished) starts over from Redis: each event learned once."""
    config = make_config(publish_events=1000, publish_seconds=60)
    app = create_app(config, r).test_client()
    for _ in range(12):
        event = call(app, "post", RANK, json=GOOD).get_json()["event_id"]
        assert _reward(app, event).status_code == 200
    learner = LoopLearner(r, config.loops["recs"], config)
    assert learner.step() == 12  # read and learned, nothing published yet
    learner.restart()            # what Learner.run does after a Redis error
    assert learner.step() == 12 and learner.policy.n_learned == 12  # from the pending list
    assert learner.publish() == 1
    assert r.hget(keys.stats("recs"), "learned") == b"12"


def test_a_pin_survives_a_redis_restart(crashable):
    with _service_and_learner(crashable) as (app, client, _):
        _learned(app, client, 5)
        assert _learned(app, client, 5) >= 2
        pin = call(app, "post", "/v1/loops/recs/deploy", json={"version": 1, "learn": False,
                                                                  "reason": "incident"})
        assert pin.status_code == 200
        crashable.kill()
        time.sleep(0.3)
        crashable.start()  # from its append-only file
        loop = call(app, "get", "/v1/loops/recs").get_json()
        assert (loop["serving_version"], loop["learning"]) == (1, False)
        latest = int(client.hget(keys.model("recs"), "version"))
        for _ in range(5):  # decided by version 1, acknowledged by the learner, not learned
            event = call(app, "post", RANK, json=GOOD).get_json()
            assert event["model"]["version"] == 1
            assert _reward(app, event["event_id"]).status_code == 200
        deadline = time.monotonic() + 5
        while int(client.hget(keys.stats("recs"), "not_learned") or 0) < 5:
            assert time.monotonic() < deadline, "the pinned loop's events were not acknowledged"
            time.sleep(0.05)
        assert int(client.hget(keys.model("recs"), "version")) == latest
        audit = call(app, "get", "/v1/loops/recs/audit").get_json()["entries"]
        assert [(e["action"], e["reason"]) for e in audit] == [("pin", "incident")]
