"""Lua scripts called with one EVALSHA on a kept connection: the hot path of rank.

redis-py's ``Script`` goes through ``Redis.execute_command`` and the pool on every
call: a retry wrapper, metrics recorders, event dispatch and a ``poll()`` of the
socket. Clients made by :func:`service.store.client.connect` never retry (a resent log
write would refuse its own event), so all of that is overhead, about 100 µs of CPU per
call on the benchmark VM, a sixth of a rank's own work. Here the command is written and
its reply read on a connection the caller keeps between calls, with the pool's
semantics: a kept connection the server closed meanwhile is reopened before use,
one that failed mid-call is dropped, errors are raised as redis-py raises them.
"""
from __future__ import annotations

import collections
import hashlib
import os
import threading
import weakref

import redis
from redis.exceptions import NoScriptError


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
    redis-py's ``Script`` does. Thread-safe: a call holds its connection alone.
    """

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
