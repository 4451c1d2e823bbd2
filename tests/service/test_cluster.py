"""The service on a real Redis Cluster (3 primaries, 3 replicas): loops on different
nodes, rank -> reward -> learner -> a new version served, sessions, health, uploads,
export and replay's reader, and a loop's slot migrated between nodes while ranks and
rewards run."""
import gzip
import json
import threading
import time

import numpy as np
import pytest
import redis

from service.app import create_app
from service.cli import main as cbserve
from service.config import parse_config
from service.export import open_log
from service.learner import LoopLearner
from service.store import LoopLog, connect, keys
from service.store.client import is_cluster
from service.testing.failover import fault_run
from service.testing.redis_cluster import RedisCluster, slot_of

from tests.conftest import RECS_ITEMS

#: Loop names whose ``{loop}`` hash tags fall in the slots of the three primaries.
LOOPS = ("recs", "hero", "cart")
CONTEXTS = [{"user": {"age": float(a), "country": c}} for a in (20, 40, 60) for c in ("FR", "DE")]


def cluster_config(**service):
    linucb = {"policy": {"type": "linucb", "alpha": 0.5, "epsilon": 0.05},
              "featurizer": {"context_dim": 16, "action_dim": 8, "interaction_dim": 8},
              "reward_wait": "30s", "default_reward": 0.0, "seed": 2}
    return parse_config({"service": {"publish_events": 20, "publish_seconds": 0.5, **service},
                         "models": {"check_latency": "1s"},
                         "loops": {name: dict(linucb) for name in LOOPS} | {
                             "shop": {"actions": ["a", "b", "c"], "featurizer": {"context_dim": 8},
                                      "session": {"ttl": "10m", "history": 5},
                                      "reward_wait": "1m"}}})


@pytest.fixture(scope="module")
def cluster():
    with RedisCluster() as c:
        yield c


@pytest.fixture
def rc(cluster):
    client = connect(cluster.url)
    for node in client.get_primaries():
        client.get_redis_connection(node).flushall()
    yield client
    client.close()


def test_every_node_runs_the_chosen_redis_server(rc):
    """CI runs this file with the bundled redis-server and again with Debian's (Redis 7,
    through CBSERVE_REDIS_SERVER): the nodes must be the binary asked for."""
    import subprocess

    from service.embedded_redis import server_binary

    banner = subprocess.run([server_binary(), "--version"], capture_output=True, text=True).stdout
    versions = {rc.get_redis_connection(node).info("server")["redis_version"]
                for node in rc.get_nodes()}
    assert len(versions) == 1 and f"v={versions.pop()} " in banner


def _rank(client, loop, rng):
    body = {"context": CONTEXTS[int(rng.integers(len(CONTEXTS)))],
            "actions": [RECS_ITEMS[j] for j in rng.choice(len(RECS_ITEMS), 6, replace=False)]}
    res = client.post(f"/v1/loops/{loop}/rank", json=body)
    return res.status_code, res.get_json()


def _traffic(client, loop, n, rng):
    ids = []
    for _ in range(n):
        status, res = _rank(client, loop, rng)
        assert status == 200, res
        value = 1.0 if res["chosen"] < "item-3" else 0.0
        got = client.post(f"/v1/loops/{loop}/events/{res['event_id']}/reward", json={"value": value})
        assert got.status_code == 200, got.get_json()
        ids.append(res["event_id"])
    return ids


def test_a_cluster_url_gives_a_cluster_client_and_the_loops_live_on_three_primaries(cluster, rc):
    assert is_cluster(rc) and not is_cluster(connect("redis://127.0.0.1:1/0"))
    owners = {cluster.slot_owner(slot_of(keys.log(name))).port for name in LOOPS}
    assert len(owners) == 3
    # every key of a loop is in its slot
    assert {slot_of(k) for k in (keys.log("recs"), keys.event("recs", "e1"), keys.model_version("recs", 3),
                                 keys.bucket("recs", 1), keys.session("recs", "s"))} == {slot_of("{recs}")}
    plain = redis.Redis(port=cluster.nodes[0].port)
    with pytest.raises(redis.exceptions.MovedError):  # what a plain client gets
        for name in LOOPS:
            plain.get(keys.serving(name))


def test_rank_reward_learn_and_another_worker_serves_the_new_version_on_every_node(cluster, rc):
    config = cluster_config()
    worker1 = create_app(config, rc).test_client()
    worker2 = create_app(config, connect(cluster.url)).test_client()
    rng = np.random.default_rng(0)
    for loop in LOOPS:
        assert worker2.get(f"/v1/loops/{loop}").get_json()["model"]["version"] == 0
        sent = _traffic(worker1, loop, 30, rng)
        learner = LoopLearner(rc, config.loops[loop], config)
        while learner.step():
            pass
        learner.publish()
        assert learner.version >= 1 and learner.policy.n_learned == 30
        deadline = time.monotonic() + 2.0
        while _rank(worker2, loop, rng)[1]["model"]["version"] != learner.version:
            assert time.monotonic() < deadline, f"{loop}: the new version is not served"
            time.sleep(0.05)
        logged = {json.loads(f[b"j"])["EventId"] for _, f in rc.xrange(keys.log(loop))}
        assert set(sent) <= logged
        assert worker1.get(f"/v1/loops/{loop}/health").status_code == 200
        learner.release()
    assert worker1.get("/healthz").get_json()["redis"] is True
    assert b"cbserve" in worker1.get("/metrics").data


def test_sessions_sweep_and_uploads_on_a_cluster(cluster, rc):
    config = cluster_config()
    client = create_app(config, rc).test_client()
    first = client.post("/v1/loops/shop/rank", json={"session_id": "u1", "context": {"user": {"x": 1.0}}})
    assert first.status_code == 200, first.get_json()
    event = first.get_json()["event_id"]
    got = client.post(f"/v1/loops/shop/events/{event}/reward", json={"value": 1.0, "end": True})
    assert got.status_code == 200, got.get_json()
    assert rc.hget(keys.session("shop", "u1"), "end") == b"1"
    assert rc.xlen(keys.ends("shop")) == 1

    rng = np.random.default_rng(1)
    status, res = _rank(client, "cart", rng)  # left unrewarded, then made due
    rc.zadd(keys.due("cart"), {res["event_id"]: 0})
    store = create_app(config, rc).extensions["cbserve"]["loops"]["cart"].store
    assert store.sweep() == (1, 0)
    versions = []
    learner = LoopLearner(rc, config.loops["cart"], config)
    while learner.step():
        pass
    learner.publish()
    blob = rc.get(keys.model_version("cart", learner.version))
    for _ in range(3):
        up = client.post("/v1/loops/cart/models", data=blob,
                         headers={"Content-Type": "application/octet-stream"})
        assert up.status_code == 201, up.get_json()
        versions.append(up.get_json()["version"])
    assert versions == sorted(versions) and len(set(versions)) == 3
    dep = client.post("/v1/loops/cart/deploy", json={"version": versions[-1], "learn": True, "force": True})
    assert dep.status_code == 200, dep.get_json()
    learner.release()


def test_export_and_replay_read_a_loop_on_a_cluster(cluster, rc, tmp_path, monkeypatch):
    config = cluster_config()
    client = create_app(config, rc).test_client()
    sent = _traffic(client, "hero", 25, np.random.default_rng(2))
    monkeypatch.setenv("REDIS_URL", cluster.url)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[loops.hero]\nreward_wait = "30s"\n'
                   '[loops.hero.policy]\ntype = "linucb"\n')
    out = tmp_path / "hero.json.gz"
    assert cbserve(["export", "--config", str(cfg), "--loop", "hero", "-o", str(out)]) == 0
    lines = [json.loads(line) for line in gzip.open(out, "rt").read().splitlines()]
    assert [e["EventId"] for e in lines] == sent
    assert all("_label_cost" in e for e in lines)
    source = open_log(cluster.url, "hero")  # replay's reader
    assert sum(len(chunk) for chunk in source.chunks()) == 25 and source.report.unrewarded == 0
    assert LoopLog(rc, "hero").rewards().keys() == set(sent)


def test_a_slot_migrated_between_nodes_while_ranks_run_loses_nothing(cluster, rc):
    config = cluster_config()
    app = create_app(config, connect(cluster.url))
    slot = slot_of("{recs}")
    source = cluster.slot_owner(slot)
    target = next(n for n in cluster.primaries() if n.port != source.port)
    answered, errors, stop = [], [], threading.Event()

    def ranks(seed):
        client, rng = app.test_client(), np.random.default_rng(seed)
        while not stop.is_set():
            status, res = _rank(client, "recs", rng)
            if status != 200:
                errors.append(res)
                continue
            got = client.post(f"/v1/loops/recs/events/{res['event_id']}/reward", json={"value": 1.0})
            if got.status_code != 200:
                errors.append(got.get_json())
            answered.append(res["event_id"])

    threads = [threading.Thread(target=ranks, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    moved = cluster.migrate_slot(slot, target, pause_s=0.02, batch=10)  # ranks wait it out
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert moved > 0 and cluster.slot_owner(slot).port == target.port
    assert errors == []
    logged = {json.loads(f[b"j"])["EventId"] for _, f in rc.xrange(keys.log("recs"))}
    assert len(answered) > 20 and set(answered) <= logged
    assert LoopLog(rc, "recs").rewards().keys() == set(answered)


def test_replicated_durability_answers_503_without_a_replica_and_200_with_one(cluster, rc, r):
    config = cluster_config(durability="replicated")
    rng = np.random.default_rng(3)
    alone = create_app(config, r).test_client()  # a single Redis, no replica
    status, res = _rank(alone, "recs", rng)
    assert status == 503 and "replicas acknowledged" in res["error"]["message"]
    on_cluster = create_app(config, rc).test_client()
    assert len(_traffic(on_cluster, "recs", 5, rng)) == 5


@pytest.mark.parametrize("durability", ["primary", "replicated"])
def test_a_primary_killed_under_load_fails_over_and_clients_recover(durability):
    """The loop's primary is killed while three threads rank; its replica takes over and
    the killed node comes back as the new primary's replica. Ranks answer 503 for the
    gap (``replicated``: until a replica acknowledges again), then 200 with no restart;
    with ``replicated``, no acknowledged decision is lost."""
    with RedisCluster() as cluster:
        app = create_app(cluster_config(durability=durability), connect(cluster.url))
        run = fault_run(cluster, app, "recs", threads=3)
        assert run["failed"] > 0 and run["recovered_s"] is not None, run
        if durability == "replicated":
            assert run["lost"] == 0, run


def test_challengers_learn_and_one_is_promoted_on_a_cluster(rc):
    from .test_challengers import Loop, make_config

    loop = Loop(make_config(), rc)  # loop "hero", on the second primary
    loop.run(120)
    res = loop.post("/v1/loops/hero/promote", {"challenger": "contextual", "force": True,
                                                "reason": "on a cluster"})
    assert res.status_code == 200, res.get_json()
    version = res.get_json()["serving"]
    assert rc.hget(keys.serving("hero"), "version") == str(version).encode()
    assert rc.exists(keys.model_version("hero", version))
    assert rc.xrevrange(keys.audit("hero"), count=1)[0][1][b"action"] == b"promote"
