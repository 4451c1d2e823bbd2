"""The production topology as child processes: gunicorn API workers and a separate
learner, on one Redis. Used by the worker tests and by the benchmark, fault and soak
scripts, so each exercises the same deployment the README documents.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

from .redis_server import RedisServer, free_port


class Gunicorn:
    """``gunicorn APP_SPEC`` with ``workers`` sync workers on a free local port (and on
    ``unix_socket``, if given); with ``threads`` > 0, gthread workers of that many threads.

    ``env`` is the workers' environment (``REDIS_URL``, ``CBSERVE_CONFIG``...); the
    spec names an installed module (the service's, or a baseline of :mod:`service.testing.load`).
    A context manager: started and healthy on entry, stopped (SIGTERM) on exit.
    """

    def __init__(self, app_spec: str, env: dict, workers: int = 2, log=None,
                 unix_socket: str | None = None, threads: int = 0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        #: Also listening here when given, as behind a proxy on the same host.
        self.unix_socket = unix_socket
        self.cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
                    f"127.0.0.1:{self.port}", "--log-level", "warning", app_spec]
        if unix_socket:
            self.cmd[3:3] = ["--bind", f"unix:{unix_socket}"]
        if threads:
            self.cmd[3:3] = ["--worker-class", "gthread", "--threads", str(threads)]
        self.env, self.workers, self.log = env, workers, log or subprocess.DEVNULL
        self.proc = None

    def start(self, timeout: float = 60.0) -> "Gunicorn":
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start: {' '.join(self.cmd)}")
            time.sleep(0.2)
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/healthz", timeout=2)
        except urllib.error.HTTPError:
            return True  # any HTTP answer (a baseline app's 404, a 503) means it is up
        except OSError:
            return False
        return True

    def worker_pids(self) -> list:
        """The pids of the live workers (children of the gunicorn master)."""
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def worker_rss_mb(self) -> dict:
        """``{pid: resident set size in MB}`` of every live worker."""
        out = {}
        for pid in self.worker_pids():
            try:
                out[pid] = psutil.Process(pid).memory_info().rss / 2 ** 20
            except psutil.NoSuchProcess:
                pass
        return out

    def stop(self) -> None:
        terminate(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Granian(Gunicorn):
    """The same app under granian's WSGI interface (``factory``: ``module:function``),
    ``workers`` processes of ``threads`` Python threads each; for the server comparison
    of ``scripts/bench_service.py``."""

    def __init__(self, factory: str, env: dict, workers: int = 2, log=None, threads: int = 1):
        self.port = free_port()
        self.url, self.unix_socket = f"http://127.0.0.1:{self.port}", None
        self.cmd = [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory",
                    "--workers", str(workers), "--blocking-threads", str(threads), "--port",
                    str(self.port), "--log-level", "warning", factory]
        self.env, self.workers, self.log = env, workers, log or subprocess.DEVNULL
        self.proc = None


class LearnerProcess:
    """``cbserve learner --config CONFIG`` as a child process (SIGTERM on exit), at
    CPU priority ``nice`` (as ``nice -n NICE``): on a host it shares with the API, the
    learner should take only the CPU the API leaves, its bursts of learning would
    otherwise queue requests."""

    def __init__(self, config_path: str, env: dict, log=None, nice: int = 0):
        self.cmd = [sys.executable, "-m", "service.cli", "learner", "--config", config_path]
        self.env, self.log, self.nice = env, log or subprocess.DEVNULL, nice
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=self.log,
                                     preexec_fn=(lambda: os.nice(self.nice)) if self.nice else None)
        return self

    def __exit__(self, *exc):
        terminate(self.proc)


def terminate(proc, grace: float = 30.0) -> None:
    """SIGTERM (a graceful stop: gunicorn drains, the learner publishes), then SIGKILL."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def service_env(redis_url: str, config_path: str, **extra) -> dict:
    """The environment of API workers and learner: this one plus Redis and config."""
    return {**os.environ, "REDIS_URL": redis_url, "CBSERVE_CONFIG": config_path,
            "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Topology:
    """A running deployment: its Redis (``redis`` is None when an outside one was
    given), its API, the configuration file and a scratch directory."""

    redis: RedisServer | None
    redis_url: str
    api: Gunicorn
    config: str
    tmp: str


@contextmanager
def production(config_text: str, workers: int = 4, redis_url: str | None = None,
               appendfsync: str = "always", learner_nice: int = 10, threads: int = 0):
    """gunicorn with ``workers`` workers (gthread workers of ``threads`` threads if > 0,
    as ``cbserve api --threads``) and a learner process (at CPU priority
    ``learner_nice``) for ``config_text``, on a new redis-server with an append-only
    file, reached on its unix socket (or on ``redis_url``). The API listens on a local
    port and on ``<tmp>/api.sock`` (the way a proxy on the host reaches it). Processes
    log to ``<tmp>/service.log``; everything is stopped and removed on exit."""
    tmp = tempfile.mkdtemp(prefix="cbserve-")
    config = os.path.join(tmp, "cbserve.toml")
    with open(config, "w") as fh:
        fh.write(config_text)
    server = None if redis_url else RedisServer(appendonly=True, appendfsync=appendfsync).start()
    url = redis_url or server.unix_url  # co-located: the unix socket is the cheaper way in
    env = service_env(url, config)
    try:
        with open(os.path.join(tmp, "service.log"), "ab") as log, \
                Gunicorn("service.app:create_app()", env, workers=workers, log=log,
                         unix_socket=os.path.join(tmp, "api.sock"), threads=threads) as api, \
                LearnerProcess(config, env, log=log, nice=learner_nice):
            yield Topology(server, url, api, config, tmp)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
