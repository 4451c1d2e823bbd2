"""Start a real Redis Cluster on free ports: for tests and scripts.

``with RedisCluster() as cluster: connect(cluster.url)``: 3 primaries and 3 replicas
(one each), every one a ``redis-server --cluster-enabled yes`` of the binary the
embedded Redis uses (:class:`~service.testing.redis_server.RedisServer`). The cluster is
built with CLUSTER MEET / ADDSLOTS / REPLICATE from Python (``redis-cli`` is not
needed); every process is stopped and its directory removed on exit.
:meth:`RedisCluster.migrate_slot` moves one slot between primaries the way
``redis-cli --cluster reshard`` does; :meth:`RedisCluster.kill` kills one node.
"""
from __future__ import annotations

import socket
import time

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from .redis_server import RedisServer, free_port

#: The cluster's node timeout (ms): a primary unreachable this long is failed over.
NODE_TIMEOUT_MS = 1000
#: Keys moved per MIGRATE call when a slot is migrated.
MIGRATE_BATCH = 100


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def slot_of(key: str) -> int:
    """The cluster slot of ``key`` (of its ``{hash tag}`` when it has one).

    >>> slot_of("cb:{recs}:log") == slot_of("{recs}")
    True
    """
    return key_slot(key.encode())


class RedisCluster:
    """``primaries`` primaries with ``replicas`` replicas each, slots split evenly."""

    def __init__(self, primaries: int = 3, replicas: int = 1,
                 node_timeout_ms: int = NODE_TIMEOUT_MS):
        self.n_primaries, self.n_replicas = primaries, replicas
        self.nodes: list = []
        for _ in range(primaries * (1 + replicas)):
            node = RedisServer(args=["--cluster-enabled", "yes", "--cluster-config-file",
                                     "nodes.conf", "--cluster-node-timeout", str(node_timeout_ms),
                                     "--cluster-require-full-coverage", "no"])
            node.port = cluster_port()
            node.url = f"redis://127.0.0.1:{node.port}/0"
            self.nodes.append(node)
        self.url = f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    # -- life -------------------------------------------------------------------------
    def start(self) -> "RedisCluster":
        try:
            for node in self.nodes:
                node.start()
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def client(self, port: int) -> redis.Redis:
        """A plain client of the node on ``port``."""
        return redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=5)

    def _build(self) -> None:
        clients = [self.client(n.port) for n in self.nodes]
        ids = [c.execute_command("CLUSTER", "MYID").decode() for c in clients]
        for c in clients[1:]:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
        per = REDIS_CLUSTER_HASH_SLOTS // self.n_primaries
        for i, c in enumerate(clients[:self.n_primaries]):
            end = REDIS_CLUSTER_HASH_SLOTS if i == self.n_primaries - 1 else (i + 1) * per
            c.execute_command("CLUSTER", "ADDSLOTS", *range(i * per, end))
        self._wait(lambda: all(len(self._known(c)) == len(self.nodes) for c in clients),
                   "every node to know every other")
        for j, c in enumerate(clients[self.n_primaries:]):
            c.execute_command("CLUSTER", "REPLICATE", ids[j % self.n_primaries])
        self._wait(lambda: all(self._state(c) for c in clients), "cluster_state:ok on every node")
        self._wait(lambda: all(self._synced(c) for c in clients[self.n_primaries:]),
                   "every replica in sync")
        for c in clients:
            c.close()

    @staticmethod
    def _known(c) -> list:
        return [line for line in c.execute_command("CLUSTER", "NODES").decode().splitlines()
                if line and "handshake" not in line and "noaddr" not in line]

    @staticmethod
    def _state(c) -> bool:
        info = c.execute_command("CLUSTER", "INFO").decode()
        return "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info

    @staticmethod
    def _synced(c) -> bool:
        info = c.info("replication")
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    @staticmethod
    def _wait(ok, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ok():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"Redis Cluster: timed out waiting for {what}")

    # -- topology ---------------------------------------------------------------------
    def slot_owner(self, slot: int) -> RedisServer:
        """The node serving ``slot`` (as the first live node sees it)."""
        for node in self.nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            c = self.client(node.port)
            try:
                for start, end, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        return self._by_port(int(primary[1]))
            finally:
                c.close()
        raise RuntimeError(f"no live node knows slot {slot}")

    def primaries(self) -> list:
        """The nodes currently serving slots."""
        owners = {self.slot_owner(s).port for s in self._slot_starts()}
        return [n for n in self.nodes if n.port in owners]

    def _slot_starts(self) -> list:
        per = REDIS_CLUSTER_HASH_SLOTS // self.n_primaries
        return [i * per for i in range(self.n_primaries)]

    def _by_port(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def node_id(self, node: RedisServer) -> str:
        c = self.client(node.port)
        try:
            return c.execute_command("CLUSTER", "MYID").decode()
        finally:
            c.close()

    def names_on_distinct_primaries(self, prefix: str, count: int) -> list:
        """``count`` names ``<prefix><i>`` whose ``{name}`` hash tags are served by
        ``count`` different primaries (``count`` at most the primaries)."""
        owners, out, i = set(), [], 0
        while len(out) < count:
            name = f"{prefix}{i}"
            owner = self.slot_owner(slot_of("{" + name + "}")).port
            if owner not in owners:
                owners.add(owner)
                out.append(name)
            i += 1
        return out

    def migrate_slot(self, slot: int, target: RedisServer, pause_s: float = 0.0,
                     batch: int = MIGRATE_BATCH) -> int:
        """Move ``slot`` to the primary ``target`` while clients keep using it:
        SETSLOT IMPORTING / MIGRATING, MIGRATE its keys ``batch`` at a time (``pause_s``
        between batches), SETSLOT NODE on both and on every other primary. Returns the
        keys moved."""
        source = self.slot_owner(slot)
        src, dst = self.client(source.port), self.client(target.port)
        src_id, dst_id = self.node_id(source), self.node_id(target)
        moved = 0
        try:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while True:
                names = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not names:
                    break
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                                    "KEYS", *names)
                moved += len(names)
                time.sleep(pause_s)
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            for node in self.primaries():
                if node.port not in (source.port, target.port):
                    c = self.client(node.port)
                    c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
                    c.close()
        finally:
            src.close()
            dst.close()
        return moved

    def kill(self, node: RedisServer) -> None:
        """SIGKILL one node (its replica takes over after the node timeout)."""
        node.kill()
