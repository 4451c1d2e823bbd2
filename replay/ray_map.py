"""An order-preserving parallel map on Ray, and the same map without it.

:func:`ray_map` runs ``fn(item)`` for every item as Ray tasks (on a cluster, or on a
Ray it starts on this machine) and returns the results in the order of ``items``;
:func:`local_map` is the same call in this process. Callers choose one with
:func:`mapper` and never branch again. Ray is the optional extra ``cbserve[ray]``,
imported only when a Ray map runs: importing :mod:`replay` never needs it.

``fn`` and the items travel to the workers by pickle (cloudpickle), so ``fn`` should
be a module-level function of an installed package; on a cluster every node needs
cbserve installed, in the same version.

>>> local_map(abs, [-2, 1, -3])
[2, 1, 3]
>>> seen = []
>>> mapper(None)(str.upper, ["a", "b"], progress=lambda done, total: seen.append((done, total)))
['A', 'B']
>>> seen
[(1, 2), (2, 2)]
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import socket
import traceback

from .errors import ReplayError

#: Object store of a Ray started on this machine, in bytes (the map's results and
#: arguments are small; Ray's default takes 30% of the memory).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 ** 2
#: The address meaning "a Ray started on this machine" (``--ray`` with no value).
LOCAL = "local"

logger = logging.getLogger(__name__)


class RayNotInstalled(ReplayError, ImportError):
    """Ray was asked for but is not installed (``pip install 'cbserve[ray]'``)."""


class TaskFailed(ReplayError, RuntimeError):
    """A task raised an exception that could not travel back; the message has its text."""


def local_map(fn, items, progress=None) -> list:
    """``[fn(item) for item in items]``, calling ``progress(done, total)`` after each."""
    items = list(items)
    out = []
    for item in items:
        out.append(fn(item))
        if progress is not None:
            progress(len(out), len(items))
    return out


def ray_map(fn, items, *, address=None, progress=None, num_cpus=None) -> list:
    """``[fn(item) for item in items]``, one Ray task per item, in the order of ``items``.

    Parameters
    ----------
    address : str, optional
        A Ray cluster (``"host:6379"``, ``"auto"``, or ``"ray://host:10001"`` with
        ``ray[client]`` installed); None or ``"local"``: the Ray already initialised
        in this process, else one started here for this call (see :func:`connected`).
    progress : callable, optional
        Called as ``progress(done, total)`` each time a task finishes.
    num_cpus : int, optional
        CPUs of a Ray started here (default: this machine's).

    The first failed task's exception is raised again in this process, with its type,
    message and the remote traceback as a note (or :class:`TaskFailed` when the
    exception cannot be pickled); the tasks not yet finished are cancelled.
    """
    items = list(items)
    with connected(address, num_cpus=num_cpus) as ray:
        task = ray.remote(num_cpus=1, max_retries=0)(_call)
        fn_ref = ray.put(fn)
        return _gather(ray, [task.remote(fn_ref, item) for item in items], progress)


def mapper(address=None):
    """:func:`local_map` for ``address`` None, else :func:`ray_map` on ``address``."""
    if address is None:
        return local_map
    return functools.partial(ray_map, address=address)


@contextlib.contextmanager
def connected(address=None, *, num_cpus=None):
    """This process connected to a Ray for the block; yields the ``ray`` module.

    A Ray already initialised is used whatever ``address`` says, and left running.
    Otherwise None or ``"local"`` starts a small, quiet Ray on this machine (``num_cpus``,
    default all; no dashboard; a 256 MB object store; no workers' output on this
    terminal; no usage statistics sent anywhere) and anything else connects to that
    cluster; either is shut down when the block ends.
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address in (None, LOCAL):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=False,
                 logging_level=logging.WARNING)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise ConnectionError(f"{exc} (a cluster with token authentication also needs "
                                  "RAY_AUTH_MODE=token and its token here: RAY_AUTH_TOKEN or "
                                  "~/.ray/auth_token)") from exc
    logger.info("Ray connected: %s CPUs", ray.cluster_resources().get("CPU"))
    try:
        yield ray
    finally:
        ray.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalled("Ray is not installed: pip install 'cbserve[ray]'") from exc
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``host:port`` (or ``ray://host:port``) where nothing listens:
    Ray itself retries such an address for minutes, deaf to Ctrl-C."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"no Ray cluster answers at {address}: {exc}") from exc


def _call(fn, item):
    """Run in a Ray worker: ``(True, result)`` or ``(False, exception, traceback)``."""
    try:
        return True, fn(item)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
        text = traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 - an exception that cannot travel
            exc = TaskFailed(f"{type(exc).__name__}: {exc}")
        return False, exc, text


def _gather(ray, refs, progress) -> list:
    """The tasks' results in the order of ``refs``; the first failure raised."""
    index = {ref: i for i, ref in enumerate(refs)}
    results, pending = [None] * len(refs), list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            outcome = ray.get(ref)
            if not outcome[0]:
                for other in pending:
                    ray.cancel(other)
                exc = outcome[1]
                exc.add_note("in a Ray task:\n" + outcome[2].rstrip())
                raise exc
            results[index[ref]] = outcome[1]
            if progress is not None:
                progress(len(refs) - len(pending), len(refs))
    return results
