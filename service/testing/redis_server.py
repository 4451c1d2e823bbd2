"""Start a real ``redis-server`` process on a free port: for tests and benchmarks.

Uses the binary the embedded Redis uses (:func:`service.embedded_redis.server_binary`).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis

from ..embedded_redis import server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``with RedisServer() as srv: redis.Redis.from_url(srv.url)``; stopped and its
    directory removed on exit. No persistence unless ``appendonly=True`` (then every
    write is fsynced before its reply: ``appendfsync always``, unless told otherwise); ``args``
    are more ``redis-server`` options. :meth:`kill` and :meth:`start` again simulate a
    crash: same port, same files."""

    def __init__(self, appendonly: bool = False, appendfsync: str = "always", args=()):
        self.appendonly, self.appendfsync, self.args = appendonly, appendfsync, list(args)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="cbserve-redis-")
        self.socket = os.path.join(self.dir, "redis.sock")
        #: The same server on its unix socket: a co-located client's cheaper way in.
        self.unix_url = f"unix://{self.socket}?db=0"
        self.proc = None

    def start(self) -> "RedisServer":
        args = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--unixsocket", self.socket, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.appendfsync, *self.args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(500):
            try:
                client.ping()
                return self
            except redis.ConnectionError:  # refused, or still loading its append-only file
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                time.sleep(0.02)
        raise RuntimeError("redis-server did not answer within 10 s")

    def kill(self) -> None:
        """SIGKILL the server (no shutdown save); its files stay for :meth:`start`."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
