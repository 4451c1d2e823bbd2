"""The reward join across processes: one reward per event however many workers race,
default rewards after the window, deferred events learned only once activated."""
import threading
import time

import redis

from bandits import dsjson
from service.errors import Conflict, Gone
from service.learner import LoopLearner
from service.store import LoopStore, keys

from tests.conftest import make_config


def _log(store, n, deferred=False, prefix="e"):
    """Log n decisions over the 4 hero actions, the i-th choosing action i % 4."""
    actions = [(f"hero-{x}", {}) for x in "abcd"]
    for i in range(n):
        order = [i % 4] + [j for j in range(4) if j != i % 4]
        event = dsjson.decision_event(loop=store.name, event_id=f"{prefix}{i}", epoch_s=time.time(),
                                      context={}, actions=actions, order=order, pmf=[0.25] * 4,
                                      policy="epsilon_greedy", version=0, deferred=deferred)
        store.log_decision(f"{prefix}{i}", dsjson.dumps(event), deferred, 0.001, version=0,
                           action=f"hero-{'abcd'[i % 4]}", propensity=0.25, explored=False)


def test_eight_threads_racing_rewards_count_each_event_once(redis_server, r):
    config = make_config()
    loop = config.loops["recs"]
    _log(LoopStore(r, loop), 200)
    outcomes, barrier = [], threading.Barrier(8)

    def worker(t):
        store = LoopStore(redis.Redis.from_url(redis_server.url), loop)  # own connection
        barrier.wait()
        for i in range(200):
            value = 1.0 if (i + t) % 2 == 0 or i % 5 else 0.0  # some threads disagree
            try:
                outcomes.append((i, store.reward(f"e{i}", value)))
            except Conflict:
                outcomes.append((i, "conflict"))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [i for i, status in outcomes if status == "ok"]
    assert sorted(accepted) == list(range(200))  # exactly one winner per event
    assert len(outcomes) == 1600
    assert r.xlen(keys.joined("recs")) == 200
    stats = LoopStore(r, loop).stats()
    assert stats["rewards"] == 200 and stats["joined"] == 200
    joined_ids = [f[b"e"] for _, f in r.xrange(keys.joined("recs"))]
    assert len(set(joined_ids)) == 200


def test_default_reward_after_the_window_and_late_reward_refused(r):
    config = make_config()
    loop = config.loops["hero"]  # reward_wait 2 s, default reward 0
    store = LoopStore(r, loop)
    _log(store, 5)
    store.reward("e0", 1.0)
    assert store.sweep() == (0, 0)  # nothing is due yet
    time.sleep(2.1)
    assert store.sweep() == (4, 0)
    rewards = store.rewards()
    assert rewards["e0"] == (1.0, "reward")
    assert {rewards[f"e{i}"] for i in range(1, 5)} == {(0.0, "default")}
    try:
        store.reward("e3", 1.0)
        raise AssertionError("a reward after the window must be refused")
    except Gone:
        pass
    assert store.reward("e0", 1.0) == "same"  # a retried reward stays idempotent
    assert store.sweep() == (0, 0) and r.xlen(keys.joined("hero")) == 5


def test_deferred_event_is_learned_only_after_activation(r):
    config = make_config()
    loop = config.loops["hero"]
    store = LoopStore(r, loop)
    _log(store, 3, deferred=True)
    for i in range(3):
        store.reward(f"e{i}", 1.0)
    store.activate("e1")
    learner = LoopLearner(r, loop, config)
    learner.step()
    assert learner._unacked and len(learner._unacked) == 1
    time.sleep(2.1)
    assert store.sweep() == (0, 2)  # never activated: expired, not learned
    try:
        store.activate("e2")
        raise AssertionError("activation after the window must be refused")
    except Gone:
        pass
    assert r.xlen(keys.joined("hero")) == 1 and store.stats()["expired"] == 2
