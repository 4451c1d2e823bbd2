"""Every Redis key cbserve uses, built here and nowhere else.

All keys of a loop share the hash tag ``{loop}`` so a loop lives in one Redis Cluster
slot and its Lua scripts and MULTI blocks stay legal there.

=============================  ========  =================================================
key                            type      holds
=============================  ========  =================================================
``cb:{loop}:log``              stream    one DSJSON decision per entry (field ``j``)
``cb:{loop}:ev:<event_id>``    hash      join state of one event (status, reward, deadline)
``cb:{loop}:due``              zset      open events by reward deadline (ms)
``cb:{loop}:joined``           stream    rewarded events for the learner (``e``, ``s``, ``r``, ``k``)
``cb:{loop}:model``            hash      the learner's head: the version it learns from, and its metadata
``cb:{loop}:model:<version>``  string    policy snapshot bytes of one version
``cb:{loop}:models``           hash      the registry: version -> JSON metadata of each version kept
``cb:{loop}:versions``         string    the last version number given (monotonic per loop)
``cb:{loop}:serving``          hash      the serving pointer: ``version``, ``learn`` (1 or 0), ``spec``;
                                         a drift correction's ``explore``, ``explore_until``
``cb:{loop}:audit``            stream    deploys, pins, promotions, refusals, uploads, corrections
``cb:{loop}:figures``          hash      live figures of each version: ``<v>:d`` decisions, ``<v>:n``
                                         rewards joined, ``<v>:s`` their sum, ``<v>:q`` sum of squares
``cb:{loop}:stats``            hash      counters behind ``/metrics``
``cb:{loop}:learner``          string    the learner's lock (one learner per loop)
``cb:{loop}:sess:<session>``   hash      a session's step count and recent history (TTL)
``cb:{loop}:ends``             stream    ended episodes (``id``, ``ep``, ``n`` steps)
``cb:{loop}:challengers``      hash      challengers' snapshots, reward models, figures
``cb:{loop}:ch:<name>``        list      a challenger's evaluation window (record blocks)
``cb:{loop}:w:<minute>``       hash      one minute's health figures (TTL: ``health.retention``)
``cb:{loop}:drift``            hash      the drift detectors' state and the active correction
=============================  ========  =================================================
"""
from __future__ import annotations

#: Consumer group of the learner on the joined stream.
LEARNER_GROUP = "learner"
#: Consumer group of the challengers (a loop without challengers has none).
CHALLENGER_GROUP = "challengers"
#: Extra life of an event's join state after its reward window (seconds): a late
#: reward is answered 410 (not 404) for this long.
EVENT_GRACE_S = 86400


def _base(loop: str) -> str:
    return f"cb:{{{loop}}}:"


def log(loop: str) -> str:
    return _base(loop) + "log"


def event(loop: str, event_id: str) -> str:
    return _base(loop) + "ev:" + event_id


def event_prefix(loop: str) -> str:
    return _base(loop) + "ev:"


def due(loop: str) -> str:
    return _base(loop) + "due"


def joined(loop: str) -> str:
    return _base(loop) + "joined"


def model(loop: str) -> str:
    return _base(loop) + "model"


def model_version(loop: str, version: int) -> str:
    return _base(loop) + f"model:{version}"


def model_prefix(loop: str) -> str:
    """Prefix of the snapshot keys (:func:`model_version` is the prefix plus the version)."""
    return _base(loop) + "model:"


def registry(loop: str) -> str:
    return _base(loop) + "models"


def versions(loop: str) -> str:
    return _base(loop) + "versions"


def serving(loop: str) -> str:
    return _base(loop) + "serving"


def audit(loop: str) -> str:
    return _base(loop) + "audit"


def figures(loop: str) -> str:
    """The live figures of every version, four fields each (:func:`figure_fields`)."""
    return _base(loop) + "figures"


def figure_fields(version: int) -> list:
    """The fields of ``version`` in :func:`figures`: decisions served, rewards joined,
    reward sum, sum of squared rewards.

    >>> figure_fields(7)
    ['7:d', '7:n', '7:s', '7:q']
    """
    return [f"{version}:{f}" for f in "dnsq"]


def stats(loop: str) -> str:
    return _base(loop) + "stats"


def learner_lock(loop: str) -> str:
    return _base(loop) + "learner"


def session(loop: str, session_id: str) -> str:
    return _base(loop) + "sess:" + session_id


def ends(loop: str) -> str:
    return _base(loop) + "ends"


def challengers(loop: str) -> str:
    return _base(loop) + "challengers"


def challenger_window(loop: str, name: str) -> str:
    return _base(loop) + "ch:" + name


def bucket(loop: str, minute: int) -> str:
    """The health bucket of one minute (``minute``: Unix time // 60)."""
    return _base(loop) + f"w:{minute}"


def drift(loop: str) -> str:
    return _base(loop) + "drift"
