"""LuaScript: the rank path's EVALSHA on kept connections behaves as redis-py's Script
and its pool would: loads the script when the server lacks it, survives a server
restart without an error, raises errors unchanged, and keeps one connection per
concurrent caller, all owned (and closed) by the client's pool."""
import multiprocessing
import threading
import time

import pytest
import redis

from service.store import connect
from service.store.scriptcall import LuaScript
from service.testing.redis_server import RedisServer

INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def _settles(r, name, n):
    """The server sees ``n`` clients called ``name`` within 2 s (it notices a close
    when it next polls)."""
    def count():
        return sum(1 for c in r.client_list() if c["name"] == name)
    deadline = time.monotonic() + 2
    while count() != n and time.monotonic() < deadline:
        time.sleep(0.01)
    return count() == n


def test_runs_and_reloads_a_flushed_script(r):
    script = LuaScript(r, INCR)
    assert script(keys=["n"], args=[2]) == 2
    r.script_flush()  # as after a restart without the script cache
    assert script(keys=["n"], args=[3]) == 5
    assert r.script_exists(script.sha) == [True]
    assert script.sha == r.register_script(INCR).sha


def test_errors_propagate_and_the_connection_stays_usable(r):
    script = LuaScript(r, INCR)
    r.set("s", "text")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        script(keys=["s"], args=[1])
    assert script(keys=["n"], args=[1]) == 1
    assert len(script.lane.idle) == 1


def test_a_restarted_server_is_reached_without_an_error():
    with RedisServer() as server:
        client = connect(server.url)
        script = LuaScript(client, INCR)
        assert script(keys=["n"], args=[1]) == 1
        server.kill()
        with pytest.raises(redis.ConnectionError):
            script(keys=["n"], args=[1])
        server.start()  # no AOF: empty, and without the script
        assert script(keys=["n"], args=[1]) == 1
        server.kill()
        server.start()  # the kept socket is now closed by the old server: reopened first
        assert script(keys=["n"], args=[4]) == 4


def test_connections_are_one_per_concurrent_caller_and_the_pool_s(r, redis_server):
    client = connect(redis_server.url + "?client_name=lanes")
    script = LuaScript(client, INCR)
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        for _ in range(50):
            script(keys=["n"], args=[1])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(r.get("n")) == 400
    assert 1 <= len(script.lane.idle) <= 8
    assert _settles(r, "lanes", len(script.lane.idle))
    client.connection_pool.disconnect()  # as the demo does before stopping Redis
    assert _settles(r, "lanes", 0)
    assert script(keys=["n"], args=[1]) == 401  # and a later call reconnects
    assert LuaScript(client, INCR).lane is script.lane  # one set of connections per client


def _child(script, out):
    out.put(script(keys=["n"], args=[10]))


def test_a_forked_child_opens_its_own_connection(r, redis_server):
    script = LuaScript(connect(redis_server.url), INCR)
    assert script(keys=["n"], args=[1]) == 1
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child, args=(script, out))
    child.start()
    assert out.get(timeout=10) == 11
    child.join(timeout=10)
    assert child.exitcode == 0
    assert script(keys=["n"], args=[1]) == 12  # the parent's socket was left alone
