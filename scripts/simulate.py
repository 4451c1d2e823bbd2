"""Simulated users for a loop: in-process policies, or a running cbserve over HTTP.

In-process (policies from ``--policy`` JSON specs and/or a loop configuration)::

    python scripts/simulate.py --env treatments --rounds 5000 \\
        --policy '{"type": "epsilon_greedy", "model": "disjoint"}' --policy '{"type": "linucb"}'
    python scripts/simulate.py --config config/example.toml --loop recs

A grid of policies × environments × seeds (repeatable ``--env``, ``--seeds N`` or a
list), one in-process run per cell, in this process or as Ray tasks with ``--ray``
(a local Ray; ``--ray ADDRESS``: a cluster); the same figures either way. Writes
``grid.csv`` (one row per run) to ``--out``, prints one table (mean ± sd over seeds)
and, last, one JSON object with the figures::

    python scripts/simulate.py --env linear --env logistic --seeds 8 --rounds 2000 \
        --policy '{"type": "epsilon_greedy"}' --policy '{"type": "linucb"}' --ray

Over HTTP against a running service (rank, then reward ``--delay`` rounds later; a
``--missing`` share of rewards is never sent), checking afterwards that every decision
is in the service's log with the propensity the client got. The log is read from the
service's Redis: ``--redis-url``, else ``$REDIS_URL``, else the embedded Redis of the
``cbserve serve --config FILE`` given as ``--config FILE``; it is checked reachable
before the first round::

    python scripts/simulate.py --url http://127.0.0.1:8080 --config config/example.toml \
        --loop homepage-hero --delay 20

Writes a CSV per policy and ``simulate.png`` (cumulative reward and regret) to ``--out``
and prints the final table. Exit status 1 if the log check finds a difference, 2 on
bad arguments.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

from redis import RedisError

from bandits import BanditError, make_policy
from bandits.environments import ENVIRONMENTS, make_environment, run_policy
from replay.errors import ReplayError
from replay.ray_map import LOCAL, connected, mapper
from service.config import load_config
from service.embedded_redis import config_redis_url
from service.errors import CommandError, ServiceError
from service.sim.demo import env_spec_for_loop, progress_bar
from service.sim.grid import grid_cells, grid_table, parse_seeds, run_cell, summarize, write_grid_csv
from service.sim.report import plot, slug, table, write_csv
from service.sim.traffic import HttpError, JsonClient, check_log, drive

DEFAULT_POLICIES = [{"type": "epsilon_greedy"}, {"type": "linucb"}, {"type": "lints"}, {"type": "vw"}]


def env_args(pairs) -> dict:
    """``key=value`` pairs; values are JSON when they parse, strings otherwise."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--env-arg: expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def policy_spec(text: str) -> dict:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise argparse.ArgumentTypeError('must be a JSON object such as {"type": "linucb"}')
    return spec


def env_specs(args, action_ids=None, loop=None) -> list:
    """Specifications (without seed) of the ``--env`` environments, or of the one that
    fits the loop's actions."""
    if args.env:
        specs = []
        for name in args.env:
            spec = {"type": name, **env_args(args.env_arg)}
            if name == "treatments" and action_ids:
                spec.setdefault("actions", list(action_ids))
            specs.append(spec)
    else:
        specs = [env_spec_for_loop(loop or "sim", action_ids)]
    if args.change_at is not None:
        specs = [{**spec, "change_at": args.change_at} for spec in specs]
    return specs


def environment(args, action_ids=None, loop=None):
    """The (first) ``--env`` environment, or the one that fits the loop's actions."""
    return make_environment({**env_specs(args, action_ids, loop)[0], "seed": args.seed})


def runs_of(args) -> list:
    """``(label, policy spec, featurizer, action ids, loop)`` of each in-process run."""
    runs = [(json.dumps(s, separators=(",", ":")), s, None, None, None) for s in args.policy]
    if args.config:
        config = load_config(args.config)
        for name in args.loop or list(config.loops):
            if name not in config.loops:
                raise CommandError(f"--loop: unknown loop {name!r} (configured: {', '.join(config.loops)})")
            loop = config.loops[name]
            runs.append((f"{name} ({loop.policy['type']})", loop.policy, loop.featurizer,
                         [a["id"] for a in loop.actions or []], name))
    return runs or [(s["type"], s, None, None, None) for s in DEFAULT_POLICIES]


def in_process(args) -> tuple:
    trajs = []
    for label, spec, featurizer, ids, loop in runs_of(args):
        policy, env = make_policy(spec, featurizer), environment(args, ids, loop or label)
        update, close = progress_bar(args.rounds, label) if args.progress else (None, lambda: None)
        try:
            trajs.append(run_policy(policy, env, args.rounds, seed=args.seed, delay=args.delay,
                                    missing=args.missing, label=label, progress=update))
        finally:
            close()
    return {env.describe(): trajs}, True


def grid(args) -> dict:
    """Run the grid (on Ray with ``--ray``), write ``grid.csv``, print the table; the figures."""
    seeds = parse_seeds(args.seeds, args.seed) if args.seeds else [args.seed]
    cells = []
    for label, spec, featurizer, ids, loop in runs_of(args):
        cells += grid_cells([(label, spec, featurizer)], env_specs(args, ids, loop or label), seeds,
                            args.rounds, delay=args.delay, missing=args.missing)
    figures = {"runs": len(cells), "seeds": seeds, "rounds": args.rounds, "ray": args.ray}
    start = time.perf_counter()
    with connected(args.ray) if args.ray else contextlib.nullcontext():
        figures["ray_start_seconds"] = round(time.perf_counter() - start, 2) if args.ray else None
        update, close = (progress_bar(len(cells), "grid", "run") if args.progress
                         else (None, lambda: None))
        try:
            results = mapper(args.ray)(run_cell, cells,
                                       progress=update and (lambda done, total: update(1)))
        finally:
            close()
    figures["seconds"] = round(time.perf_counter() - start, 2)
    os.makedirs(args.out, exist_ok=True)
    write_grid_csv(results, os.path.join(args.out, "grid.csv"))
    figures["rows"] = summarize(results)
    print(grid_table(figures["rows"]))
    print(f"wrote {args.out}/grid.csv (one row per run)")
    return figures


def log_redis(args):
    """A client of the service's Redis for the log check, checked reachable, or None
    when no Redis is named: ``--redis-url``, else ``$REDIS_URL``, else the embedded
    Redis of the ``cbserve serve`` running with ``--config``."""
    import redis

    if args.redis_url:
        url, option = args.redis_url, "--redis-url"
    elif os.environ.get("REDIS_URL"):
        url, option = os.environ["REDIS_URL"], "$REDIS_URL"
    elif args.config:
        config, option = load_config(args.config), "--config"
        url = config_redis_url(config)
        if url is None:
            raise CommandError(
                f"--config: no cbserve serve is running on {os.path.abspath(config.data_dir)} (the "
                f"data_dir of {args.config}), whose Redis the log check reads; start it, or give "
                "--redis-url")
    else:
        return None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=30)
        client.ping()
    except ValueError as exc:
        raise CommandError(f"{option}: not a Redis URL: {url} ({exc})") from exc
    except redis.RedisError as exc:
        raise CommandError(f"{option}: cannot reach the service's Redis at {url} ({exc}); "
                           "name it with --redis-url URL, $REDIS_URL or --config FILE") from exc
    return client


def over_http(args) -> tuple:
    if not args.loop or len(args.loop) != 1:
        raise CommandError("--loop: name exactly one loop of the service at --url")
    log_client = log_redis(args)
    loop, client = args.loop[0], JsonClient(args.url)
    client.wait_healthy(10)
    env = environment(args, client.call("GET", f"/v1/loops/{loop}").get("actions"), loop)
    since = int(time.time() * 1000) - 1
    update, close = progress_bar(args.rounds, loop) if args.progress else (None, lambda: None)
    try:
        traj = drive(client, loop, env, args.rounds, delay=args.delay, missing=args.missing,
                     progress=update)
    finally:
        close()
    ok = True
    if log_client is not None:
        check = check_log(log_client, loop, traj, since)
        print(f"log check: {check}")
        ok = check.ok
    else:
        print("log check skipped: give --config FILE (the service's), --redis-url URL or "
              "$REDIS_URL to compare with the log")
    return {env.describe(): [traj]}, ok


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", action="append", choices=list(ENVIRONMENTS),
                   help="environment (repeatable: a grid; default: UI treatments for a loop of "
                        "4-8 fixed actions, else a catalogue; 'linear' for bare --policy runs)")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="environment parameter of every --env, e.g. n_actions=8 or "
                        "dataset=digits (repeatable)")
    p.add_argument("--change-at", type=int, help="non-stationary: reverse the rewards at this round")
    p.add_argument("--policy", action="append", default=[], type=policy_spec,
                   help="policy spec as JSON (repeatable)")
    p.add_argument("--config", help="configuration (TOML): in process, simulate its loops' "
                                    "policies; with --url, the service's, whose Redis the log "
                                    "check reads")
    p.add_argument("--loop", action="append", help="loop name (repeatable with --config)")
    p.add_argument("--url", help="drive a running service instead (http://host:port)")
    p.add_argument("--redis-url", help="the service's Redis, for the log check "
                                       "(default: $REDIS_URL, else --config's)")
    p.add_argument("--rounds", type=int, default=5000)
    p.add_argument("--delay", type=int, default=0, help="rounds before a reward is sent")
    p.add_argument("--missing", type=float, default=0.0, help="share of rewards never sent")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", metavar="N|S1,S2,...",
                   help="a grid over seeds: N seeds from --seed on, or these seeds")
    p.add_argument("--ray", nargs="?", const=LOCAL, metavar="ADDRESS",
                   help="run the grid's cells as Ray tasks: on a local Ray, or on the cluster "
                        "at ADDRESS (host:6379 or auto); pip install 'cbserve[ray]'")
    p.add_argument("--out", default="simulate-out", help="directory of the CSVs and the PNG")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.rounds < 1 or args.delay < 0 or not 0 <= args.missing <= 1:
        p.error("--rounds must be >= 1, --delay >= 0 and --missing in [0, 1]")
    is_grid = bool(args.ray or args.seeds or len(args.env or []) > 1)
    if args.url and is_grid:
        p.error("--ray, --seeds and several --env run in process, not with --url")
    if not args.url and not args.config and not args.env:
        args.env = ["linear"]
    try:
        if is_grid:
            print(json.dumps(grid(args)))
            return 0
        groups, ok = over_http(args) if args.url else in_process(args)
    except (BanditError, ServiceError, HttpError, ValueError, OSError, RedisError,
            ReplayError) as exc:
        text = exc.message if isinstance(exc, ServiceError) else exc
        print(f"simulate: {'Redis: ' if isinstance(exc, RedisError) else ''}{text}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for trajs in groups.values():
        for traj in trajs:
            write_csv(traj, os.path.join(args.out, slug(traj.label) + ".csv"))
    plot(groups, os.path.join(args.out, "simulate.png"))
    print(table([t.summary() for trajs in groups.values() for t in trajs]))
    print(f"wrote {args.out}/simulate.png and one CSV per policy")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
