"""Lua scripts called with one EVALSHA on a kept connection: the hot path of rank.

redis-py's ``Script`` goes through ``Redis.execute_command`` and the pool on every
call: a retry wrapper, metrics recorders, event dispatch and a ``poll()`` of the
socket. Clients made by :func:`service.store.client.connect` never retry (a resent log
write would refuse its own event), so all of that is overhead, about 100 µs of CPU per
call on the benchmark VM, a sixth of a rank's own work. Here the command is written and
its reply read on a connection the caller keeps between calls, with the pool's
semantics: a kept connection the server closed meanwhile is reopened before use,
one that failed mid-call is dropped, errors are raised as redis-py raises them.

On a Redis Cluster (a ``RedisCluster`` client) a script keeps connections per node:
:class:`ClusterLuaScript` runs a call on the primary serving the slot of its first key
(every key of a call shares the loop's hash tag, so its slot), follows MOVED (the
slot map is updated from the reply) and ASK (ASKING, then the call, on the node named)
and waits out TRYAGAIN (a slot being migrated): none of those ran the script, so
sending it again is safe. A single Redis takes the plain path, unchanged.
"""
from __future__ import annotations

import collections
import hashlib
import os
import threading
import time
import weakref

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError

from .client import REDIS_ERRORS, NotReplicated

#: Redirections (MOVED, ASK) a cluster call follows before its error is raised.
REDIRECTS = 5
#: Longest wait (seconds) of a cluster call for a slot being migrated (TRYAGAIN: its
#: keys are split between two nodes until the migration ends), and the pause between
#: attempts.
TRYAGAIN_WAIT_S = 2.0
TRYAGAIN_PAUSE_S = 0.01


class _Lane:
    """Connections taken once from a client's pool and kept: the pool still owns them
    (``pool.disconnect()`` closes them; a forked child's pool resets itself), but a
    call only pops one from a deque and pushes it back. As many as concurrent calls."""

    def __init__(self, client: redis.Redis):
        self.pool, self.idle, self.pid = client.connection_pool, collections.deque(), os.getpid()

    def take(self):
        if self.pid != os.getpid():  # forked: never share the parent's sockets
            self.idle, self.pid = collections.deque(), os.getpid()
        try:
            conn = self.idle.pop()
        except IndexError:
            return self.pool.get_connection()
        try:  # as the pool checks: a server that restarted closed this socket meanwhile
            if conn.can_read():
                conn.disconnect()  # (or it holds stray bytes): the next write reconnects
        except (redis.ConnectionError, OSError):
            conn.disconnect()
        return conn

    def give_back(self, conn) -> None:
        self.idle.append(conn)


_lanes: "weakref.WeakKeyDictionary[redis.Redis, _Lane]" = weakref.WeakKeyDictionary()
_lanes_lock = threading.Lock()


def _lane(client: redis.Redis) -> _Lane:
    with _lanes_lock:
        lane = _lanes.get(client)
        if lane is None:
            lane = _lanes[client] = _Lane(client)
        return lane


class LuaScript:
    """``script(keys=[...], args=[...])``: run ``text`` on ``client``'s server.

    Loads the script on first use and again after a server restart (NOSCRIPT), as
    redis-py's ``Script`` does. Thread-safe: a call holds its connection alone. A
    ``RedisCluster`` client gives a :class:`ClusterLuaScript`.
    """

    def __new__(cls, client, text: str):
        if cls is LuaScript and isinstance(client, RedisCluster):
            cls = ClusterLuaScript
        return super().__new__(cls)

    def __init__(self, client: redis.Redis, text: str):
        self.text, self.lane = text, _lane(client)
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    def __call__(self, keys=(), args=()):
        conn = self.lane.take()
        try:
            try:
                return self._run(conn, keys, args)
            except NoScriptError:
                conn.send_command("SCRIPT", "LOAD", self.text)
                conn.read_response()
                return self._run(conn, keys, args)
        except redis.ResponseError:
            raise  # the server's whole reply was read: the connection is clean
        except BaseException:
            conn.disconnect()  # a reply may be in flight: never read this socket again
            raise
        finally:
            self.lane.give_back(conn)

    def _run(self, conn, keys, args):
        conn.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
        return conn.read_response()

    def replicate(self, replicas: int, timeout_ms: int) -> None:
        """From now on each call is followed, on its connection, by ``WAIT replicas
        timeout_ms``; fewer acknowledgements raise :class:`NotReplicated` (the call's
        reply is then lost to the caller). Calls made without it pay nothing."""
        self.wait_args = (replicas, timeout_ms)
        self._run = self._run_replicated

    def _run_replicated(self, conn, keys, args, *more):
        out = type(self)._run(self, conn, keys, args, *more)
        conn.send_command("WAIT", *self.wait_args)
        acked = conn.read_response()
        if acked < self.wait_args[0]:
            raise NotReplicated(f"{acked} of {self.wait_args[0]} replicas acknowledged the write "
                                f"within {self.wait_args[1]} ms")
        return out


class ClusterLuaScript(LuaScript):
    """:class:`LuaScript` on a Redis Cluster: kept connections per node (one lane per
    node client), the node chosen by the slot of the call's first key."""

    def __init__(self, client: RedisCluster, text: str):
        self.text, self.cluster = text, client
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self.encoder = client.get_encoder()

    def __call__(self, keys=(), args=()):
        slot = key_slot(self.encoder.encode(keys[0]))
        nodes = self.cluster.nodes_manager
        node, asking, redirects = nodes.get_node_from_slot(slot), False, 0
        deadline = None
        while True:
            try:
                return self._on(node, keys, args, asking)
            except MovedError as exc:  # the slot has a new owner: update the map, go there
                nodes.move_slot(exc)
                node, asking = nodes.get_node_from_slot(slot), False
            except AskError as exc:  # being migrated, and this key is already there
                node = self.cluster.get_node(exc.host, exc.port) or nodes.get_node_from_slot(slot)
                asking = True
                if node.name != f"{exc.host}:{exc.port}":
                    raise
            except TryAgainError:  # keys split between the two nodes until the end
                deadline = deadline or time.monotonic() + TRYAGAIN_WAIT_S
                if time.monotonic() > deadline:
                    raise
                time.sleep(TRYAGAIN_PAUSE_S)
                continue
            except (redis.ConnectionError, redis.TimeoutError):
                self._reread_map()
                raise
            redirects += 1
            if redirects > REDIRECTS:
                raise redis.ResponseError(f"slot {slot}: more than {REDIRECTS} redirections")

    def _on(self, node, keys, args, asking: bool):
        lane = _lane(self.cluster.get_redis_connection(node))
        conn = lane.take()
        try:
            try:
                return self._run(conn, keys, args, asking)
            except NoScriptError:
                conn.send_command("SCRIPT", "LOAD", self.text)
                conn.read_response()
                return self._run(conn, keys, args, asking)
        except redis.ResponseError:
            raise  # MOVED, ASK, TRYAGAIN included: the whole reply was read
        except BaseException:
            conn.disconnect()
            raise
        finally:
            lane.give_back(conn)

    def _run(self, conn, keys, args, asking=False):
        if asking:
            conn.send_command("ASKING")
            conn.read_response()
        return super()._run(conn, keys, args)

    def _reread_map(self) -> None:
        """After a node failed: read the slot map again, so the next call goes to the
        primary that took over (a failed read leaves the map for the next failure)."""
        try:
            self.cluster.nodes_manager.initialize()
        except REDIS_ERRORS:
            pass
