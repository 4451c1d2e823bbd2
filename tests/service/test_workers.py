"""The production topology: gunicorn with 4 API workers (sync, or gthread as ``cbserve
api --threads``) and a separate learner process.
Every worker serves a newly published version within one second of its publication
(each checks every 0.5 s), without restart."""
import time

import pytest

from service.sim.traffic import JsonClient
from service.store import keys
from service.testing.procs import production

from tests.conftest import RECS_ITEMS

CONFIG = """
[service]
allow_anonymous = true
publish_events = 30
publish_seconds = 0.3
[loops.recs]
policy = { type = "linucb", alpha = 0.5 }
featurizer = { context_dim = 16, action_dim = 8, interaction_dim = 8 }
reward_wait = "30s"
[models]
check_latency = "1s"
"""
WORKERS = 4


def _served(url, n):
    """``{worker pid: {versions served}}`` over ``n`` requests, each on a new connection
    (gunicorn sync workers close it), so the kernel spreads them over the workers."""
    seen = {}
    for _ in range(n):
        body = JsonClient(url).call("GET", "/v1/loops/recs")
        seen.setdefault(body["served"]["worker"], set()).add(body["served"]["version"])
    return seen


@pytest.mark.parametrize("threads", [0, 4])  # sync workers, and gthread workers of 4 threads
def test_four_workers_serve_a_new_version_within_one_second(redis_server, r, threads):
    with production(CONFIG, WORKERS, redis_url=redis_server.url, threads=threads) as deployed:
        api = deployed.api
        pids = set(api.worker_pids())
        assert len(pids) == WORKERS
        before = _served(api.url, 40)  # nothing learned yet: the learner publishes nothing
        assert all(v == {0} for v in before.values())
        client = JsonClient(api.url)
        for i in range(60):
            res = client.call("POST", "/v1/loops/recs/rank",
                              {"context": {"user": {"age": i % 7}}, "actions": RECS_ITEMS[:6]})
            client.call("POST", f"/v1/loops/recs/events/{res['event_id']}/reward",
                        {"value": float(res["chosen"] in ("item-1", "item-2"))})
        deadline = time.monotonic() + 20
        while int(r.hget(keys.stats("recs"), "learned") or 0) < 60:
            assert time.monotonic() < deadline, "the learner process did not learn the events"
            time.sleep(0.1)
        time.sleep(0.5)  # publish_seconds: the version with all 60 events is out
        meta = {k.decode(): v.decode() for k, v in r.hgetall(keys.model("recs")).items()}
        version, created = int(meta["version"]), float(meta["created"])
        assert version >= 1
        time.sleep(max(0.0, created + 1.0 - time.time()))
        after = _served(api.url, 200)
        # one second after its publication, every worker answers with that version
        assert set(after) == pids, "some worker got no request: rerun with more"
        assert all(v == {version} for v in after.values()), after


def _rank_and_reward(client, n):
    for i in range(n):
        res = client.call("POST", "/v1/loops/recs/rank",
                          {"context": {"user": {"age": i % 7}}, "actions": RECS_ITEMS[:6]})
        client.call("POST", f"/v1/loops/recs/events/{res['event_id']}/reward",
                    {"value": float(res["chosen"] in ("item-1", "item-2"))})


def test_four_workers_serve_a_deployed_version_within_one_second_and_stay_pinned(redis_server, r):
    with production(CONFIG, WORKERS, redis_url=redis_server.url) as deployed:
        api, client = deployed.api, JsonClient(deployed.api.url)
        pids = set(api.worker_pids())
        deadline = time.monotonic() + 20
        while int(r.hget(keys.model("recs"), "version") or 0) < 2:  # two versions to choose from
            assert time.monotonic() < deadline, "the learner process published no second version"
            _rank_and_reward(client, 40)
            time.sleep(0.4)
        time.sleep(1.0)  # the traffic's last events are published: nothing moves the pointer
        answer = client.call("POST", "/v1/loops/recs/deploy",
                             {"version": 1, "learn": False, "reason": "pin for the test"})
        assert answer["serving"] == 1
        time.sleep(1.0)
        after = _served(api.url, 200)
        # one second after the deploy, every worker answers with the pinned version
        assert set(after) == pids, "some worker got no request: rerun with more"
        assert all(v == {1} for v in after.values()), after
        latest = int(r.hget(keys.model("recs"), "version"))
        _rank_and_reward(client, 40)  # the learner acknowledges these, and learns none
        deadline = time.monotonic() + 20
        while int(r.hget(keys.stats("recs"), "not_learned") or 0) < 40:
            assert time.monotonic() < deadline, "the learner did not acknowledge the pinned events"
            time.sleep(0.1)
        assert int(r.hget(keys.model("recs"), "version")) == latest
        assert all(v == {1} for v in _served(api.url, 40).values())
