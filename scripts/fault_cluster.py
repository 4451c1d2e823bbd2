#!/usr/bin/env python3
"""Kill a Redis Cluster primary under rank load, once per durability, and audit it.

A cluster of 3 primaries and 3 replicas (real redis-server processes,
``service.testing.redis_cluster``); the app in this process with ``--threads`` client
threads ranking on one loop. The primary serving the loop's slot is killed (SIGKILL);
its replica takes over after the cluster's node timeout, and the killed node is started
again (it rejoins as the new primary's replica). Run once with ``service.durability =
"primary"`` and once with ``"replicated"`` (``WAIT 1`` after each write: a rank is
answered only once a replica has it).

Per mode: ``acknowledged`` ranks answered 200, ``failed`` answered 503, ``lost``
acknowledged but not in the log afterwards, ``recovered_s`` seconds from the kill to
the first 200 after the last 503, ``promoted_s`` to the replica serving the slot.
Last line: JSON ``{mode: figures}``. Exit 1 if ``replicated`` lost anything or a mode
did not recover.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from service.app import create_app
from service.config import DURABILITY, parse_config
from service.store import connect
from service.testing.failover import fault_run
from service.testing.redis_cluster import RedisCluster

LOOP = "recs"


def run(durability: str, threads: int, before_s: float) -> dict:
    config = parse_config({"service": {"durability": durability, "allow_anonymous": True},
                           "loops": {LOOP: {"policy": {"type": "linucb", "alpha": 1.0},
                                            "reward_wait": "1m"}}})
    with RedisCluster() as cluster:
        client = connect(cluster.url)
        try:
            return fault_run(cluster, create_app(config, client), LOOP, threads, before_s)
        finally:
            client.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=3, help="client threads")
    parser.add_argument("--before", type=float, default=2.0, help="seconds of load before the kill")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the 503s of the gap are expected
    figures = {}
    for mode in DURABILITY:
        figures[mode] = run(mode, args.threads, args.before)
        f = figures[mode]
        print(f"{mode:<11} acknowledged {f['acknowledged']:>6}  failed {f['failed']:>5}  "
              f"lost {f['lost']:>4}  recovered_s {f['recovered_s']}  promoted_s {f['promoted_s']}")
    print(json.dumps(figures))
    bad = figures["replicated"]["lost"] > 0 or any(f["recovered_s"] is None for f in figures.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
