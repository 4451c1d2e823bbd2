"""One API process hammered from many threads while model versions change under it.

The threaded servers (werkzeug in ``cbserve serve``, gunicorn's gthread workers) run
ranks of one process side by side: the kept Redis connections, the featurizer memos
and the model swap are shared. Every answer must come from the model version it
names, be logged once under that version, and no request may fail.
"""
import http.client
import json
import threading
import time

import pytest
import redis

from bandits import make_policy
from service.embedded import RunningService
from service.store import keys
from service.testing.procs import Gunicorn, service_env

from tests.conftest import make_config

ACTIONS = ["hero-a", "hero-b", "hero-c", "hero-d"]
SPEC = {"type": "epsilon_greedy", "epsilon": 0.2, "model": "disjoint"}
FEATURIZER = {"context_dim": 8, "interaction_dim": 0, "action_id": False}
VERSIONS, THREADS, RANKS = 6, 12, 60


def _snapshot(version: int) -> bytes:
    """A model that prefers ``ACTIONS[version % 4]``: its answers name their version."""
    policy = make_policy({**SPEC, "featurizer": FEATURIZER})
    policy.learn([{"context": {"user": {"age": 1}}, "actions": ACTIONS, "chosen": version % 4,
                   "propensity": 0.25, "reward": 1.0}])
    return policy.to_bytes()


def _call(url, method, path, body=None, content_type="application/json"):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body)
    conn.request(method, path, data, {"Content-Type": content_type})
    res = conn.getresponse()
    out = (res.status, json.loads(res.read()))
    conn.close()
    return out


@pytest.fixture
def werkzeug_url(redis_server, r):
    client = redis.Redis.from_url(redis_server.url)
    with RunningService(make_config(), client) as svc:
        yield svc.url
    client.close()


@pytest.fixture
def gthread_url(redis_server, r, tmp_path):
    path = tmp_path / "cbserve.toml"
    path.write_text('[service]\nallow_anonymous = true\n[loops.hero]\n'
                    'actions = ["hero-a", "hero-b", "hero-c", "hero-d"]\n'
                    f'policy = {json.dumps(SPEC).replace(":", " =")}\n'
                    f'featurizer = {json.dumps(FEATURIZER).replace(":", " =")}\n'
                    'reward_wait = "2s"\n[models]\ncheck_latency = "1s"\n')
    env = {k: v for k, v in service_env(redis_server.url, str(path)).items()
           if not k.startswith("CBSERVE_API_KEYS")}
    with Gunicorn("service.app:create_app()", env, workers=1, threads=THREADS) as api:
        yield api.url


@pytest.mark.parametrize("server", ["werkzeug_url", "gthread_url"])
def test_many_threads_of_one_process_answer_from_the_version_they_name(server, request, r):
    url = request.getfixturevalue(server)
    for v in range(1, VERSIONS + 1):
        status, body = _call(url, "POST", "/v1/loops/hero/models", _snapshot(v),
                             "application/octet-stream")
        assert status == 201 and body["version"] == v, body
    answers, failures, done = [], [], threading.Event()

    def deployer():
        v = 0
        while not done.is_set():
            v = v % VERSIONS + 1
            status, body = _call(url, "POST", "/v1/loops/hero/deploy",
                                 {"version": v, "learn": False, "force": True})
            if status != 200:
                failures.append((status, body))
            time.sleep(0.05)

    def ranker(t):
        for i in range(RANKS):
            status, body = _call(url, "POST", "/v1/loops/hero/rank",
                                 {"context": {"user": {"age": 1}}, "event_id": f"t{t}-{i}"})
            (answers if status == 200 else failures).append(body)

    threads = [threading.Thread(target=ranker, args=(t,)) for t in range(THREADS)]
    swapper = threading.Thread(target=deployer)
    swapper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    swapper.join(timeout=30)
    assert not failures, failures[:3]
    assert len(answers) == THREADS * RANKS
    served = {a["model"]["version"] for a in answers}
    assert len(served - {0}) >= 2, served  # the versions did change under the ranks
    for a in answers:
        v = a["model"]["version"]
        if v:  # the answer's scores are those of the version it names
            best = max(a["ranking"], key=lambda item: item["score"])
            assert best["id"] == ACTIONS[v % 4], a
    logged = {}
    for _, fields in r.xrange(keys.log("hero")):
        event = json.loads(fields[b"j"])
        assert event["EventId"] not in logged
        logged[event["EventId"]] = event["policy"]["version"]
    assert logged == {a["event_id"]: a["model"]["version"] for a in answers}


def test_one_thread_refreshes_the_model_at_a_time_and_the_others_serve_on(r):
    """A model load slower than the refresh period: the other threads answer with the
    current pair meanwhile, and no two loads run at once (an older one could otherwise
    replace a newer one)."""
    from service.app import create_app
    from service.models import REFRESH_S

    model = create_app(make_config(), r).extensions["cbserve"]["loops"]["hero"].model
    running, most, loads, lock = [0], [0], [0], threading.Lock()

    def slow_refresh():
        with lock:
            running[0] += 1
            loads[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(1.6 * REFRESH_S)
        with lock:
            running[0] -= 1
        return False

    model.refresh = slow_refresh
    waits = []

    def rank_side():
        stop = time.monotonic() + 4 * REFRESH_S
        while time.monotonic() < stop:
            started = time.monotonic()
            assert model.current() == model.served
            waits.append(time.monotonic() - started)
            time.sleep(0.02)

    threads = [threading.Thread(target=rank_side) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert most[0] == 1 and loads[0] >= 2  # loads follow one another, never overlap
    slow = sum(w > REFRESH_S for w in waits)
    assert slow == loads[0] and len(waits) > 10 * slow  # only the loading thread waited
