"""Redis clients and their errors: one way to connect, one mapping of failures.

Clients fail fast and never resend a command (see :data:`CLIENT_DEFAULTS`); every Redis
error that reaches the service becomes a :class:`~service.errors.StoreError` here, at
the boundary (:func:`mapped`), so callers handle one exception.

A URL of :data:`CLUSTER_SCHEMES` (``redis+cluster://host:port``: any node of the
cluster) gives a :class:`redis.cluster.RedisCluster`; everything that takes a client
takes either. Every key of a loop shares its ``{loop}`` hash tag, so a loop's scripts,
pipelines and transactions run on the one node that serves its slot.
"""
from __future__ import annotations

import functools
import os

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from ..errors import StoreError

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

#: Client defaults: fail fast (a rank answers 503 within seconds, never hangs) and never
#: resend a command whose reply was lost (a resent log write could answer 409 for its
#: own decision). Query parameters of the URL override them (``?socket_timeout=5``).
CLIENT_DEFAULTS = {"socket_connect_timeout": 1.0, "socket_timeout": 2.0,
                   "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}


#: URL schemes naming a Redis Cluster (``rediss+cluster``: over TLS), by the scheme of
#: the node URL they stand for.
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}


def connect(url: str) -> redis.Redis | RedisCluster:
    """A client for ``url`` with :data:`CLIENT_DEFAULTS`. It reconnects by itself: a
    connection that died with its server is replaced when next taken from the pool.

    A cluster URL (:data:`CLUSTER_SCHEMES`) gives a ``RedisCluster`` with the same
    timeouts and no retry: it follows MOVED, ASK and TRYAGAIN (nothing was run), but a
    command whose node failed is not resent; the slot map is read again for the next
    command (after a failover, the promoted replica serves)."""
    for scheme, node_scheme in CLUSTER_SCHEMES.items():
        if url.startswith(scheme):
            options = {k: v for k, v in CLIENT_DEFAULTS.items() if k != "health_check_interval"}
            return RedisCluster.from_url(node_scheme + url[len(scheme):], **options)
    return redis.Redis.from_url(url, **CLIENT_DEFAULTS)


def is_cluster(client) -> bool:
    """Whether ``client`` talks to a Redis Cluster (a ``RedisCluster`` or its pipeline)."""
    return isinstance(client, RedisCluster)


def redis_from_env() -> redis.Redis | RedisCluster:
    """The Redis client named by ``REDIS_URL`` (the only place the URL is read)."""
    return connect(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))


#: What a Redis client raises: ``RedisClusterException`` (no reachable node, no slot
#: map) is not a ``RedisError``.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)

#: How long (ms) a rank or reward waits for a replica to acknowledge its write when
#: ``service.durability = "replicated"`` (``WAIT 1 <ms>``).
REPLICA_WAIT_MS = 500


class NotReplicated(redis.ResponseError):
    """No replica acknowledged a write within :data:`REPLICA_WAIT_MS`: it is on the
    primary only, and lost if the primary fails before a replica has it."""


def store_error(exc: Exception) -> StoreError:
    """The 503 for a Redis failure (one of :data:`REDIS_ERRORS`); says that nothing was
    stored, so a retry is safe."""
    if isinstance(exc, NotReplicated):
        return StoreError(f"{exc}; the request was not acknowledged: retry later (a retried "
                          "rank is a new decision, a retried reward is idempotent)")
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, RedisClusterException)):
        return StoreError(f"Redis unreachable ({exc}); nothing was stored, retry later")
    return StoreError(f"Redis refused the command ({exc}); nothing was stored, retry later")


def mapped(fn):
    """Turn redis-py connection and command errors raised by ``fn`` into :class:`StoreError`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except REDIS_ERRORS as exc:
            raise store_error(exc) from exc
    return wrapper
