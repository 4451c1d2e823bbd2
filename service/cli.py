"""The ``cbserve`` command: ``serve``, ``api``, ``learner``, ``export [--transitions]``,
``train`` (:mod:`service.warmstart`), ``evaluate-features`` (:mod:`service.features_cli`),
``demo``, ``models`` (:mod:`service.models_cli`).

Redis: ``REDIS_URL`` when set; otherwise (``serve``, ``export``) the data_dir's embedded
Redis (:mod:`service.embedded_redis`), so a restart resumes where it stopped. ``api``
and ``learner`` are the production pieces and need ``REDIS_URL``.
"""
from __future__ import annotations

import argparse
import configparser
import logging
import os
import signal
import sys
import textwrap
import time
from contextlib import contextmanager

from . import export
from .app import create_app
from .config import Config, load_config
from .api.auth import ENV_FILE, ENV_KEYS, load_keys
from .embedded import RunningService
from .embedded_redis import EmbeddedRedis, config_redis
from .errors import CommandError, ConfigError, ServiceError
from .features_cli import add_features_args, cmd_evaluate_features
from .learner import Learner
from .models_cli import add_models_parser, cmd_models
from .store import LoopStore, connect, redis_from_env
from .warmstart import add_train_args, cmd_train

log = logging.getLogger(__name__)


def _shared_redis():
    """``REDIS_URL``'s client: ``api`` and ``learner`` never start an embedded Redis."""
    if not os.environ.get("REDIS_URL"):
        raise CommandError("REDIS_URL: not set (api and learner run against a shared Redis)")
    return redis_from_env()


def plural(n: int, noun: str) -> str:
    """``"1 loop"``, ``"2 loops"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@contextmanager
def _serve_redis(config: Config):
    """The URL of ``REDIS_URL``, or of the data_dir's embedded Redis, owned (and
    stopped) by this process."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis(config.data_dir, "cbserve serve") as server:
        log.info("embedded Redis at %s (files in %s; scripts reach it with --config %s)",
                 server.url, server.data_dir, config.source)
        yield server.url


def cmd_serve(args, config: Config) -> int:
    with _serve_redis(config) as url:
        if not load_keys():
            log.warning("no API keys (%s or %s): every route is open; fine on localhost, "
                        "not in production", ENV_KEYS, ENV_FILE)
        client = connect(url)
        svc = RunningService(config, client, args.host, args.port)

        def stop(signum, frame):
            log.info("stopping (signal %d)", signum)
            svc.shutdown()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("cbserve on %s (%s%s)", svc.url, plural(len(config.loops), "loop"),
                 ", Redis of $REDIS_URL" if os.environ.get("REDIS_URL") else "")
        try:
            svc.serve()
        finally:
            client.close()
    log.info("stopped")
    return 0


def cmd_api(args, config: Config) -> int:
    from gunicorn.app.base import BaseApplication

    for name in ("workers", "threads"):
        if getattr(args, name) < (1 if name == "workers" else 0):
            raise CommandError(f"--{name}: must be at least {1 if name == 'workers' else 0}, "
                               f"got {getattr(args, name)}")

    _shared_redis()
    if not load_keys() and not args.no_auth and not config.allow_anonymous:
        raise CommandError(f"{ENV_KEYS} / {ENV_FILE}: no API key configured; the production "
                           "API does not run open (set service.allow_anonymous = true or pass "
                           "--no-auth, only behind your own gateway)")
    os.environ["CBSERVE_CONFIG"] = os.path.abspath(args.config)

    class _App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", args.bind)
            self.cfg.set("workers", args.workers)
            if args.threads:
                self.cfg.set("worker_class", "gthread")
                self.cfg.set("threads", args.threads)

        def load(self):
            return create_app(load_config(args.config))

    _App().run()
    return 0


def cmd_learner(args, config: Config) -> int:
    learner = Learner(_shared_redis(), config)
    signal.signal(signal.SIGTERM, lambda *_: learner.stop())
    signal.signal(signal.SIGINT, lambda *_: learner.stop())
    log.info("learner for %s", plural(len(config.loops), "loop"))
    learner.run()
    return 0


def cmd_export(args, config: Config) -> int:
    if args.loop not in config.loops:
        raise CommandError(f"--loop: unknown loop {args.loop!r} (configured: {', '.join(config.loops)})")
    loop = config.loops[args.loop]
    if args.transitions and not loop.sequential:
        raise CommandError(f"--transitions: loop {args.loop!r} is not sequential (no session table)")
    parquet = export.is_parquet(args.output, args.format)
    if parquet and args.transitions:
        raise CommandError("--format: --transitions writes JSON lines (.jsonl, .jsonl.gz), not Parquet")
    if args.format == "dsjson" and args.output.endswith(".parquet"):
        raise CommandError("-o/--output: a .parquet name with --format dsjson; name it .json or .json.gz")
    if parquet:
        export.pyarrow_modules()
    partitioned = parquet and not args.output.endswith(".parquet")
    start = "-" if args.since is None else f"{int(since_epoch(args.since) * 1000)}-0"
    opened = (export.output_path(args.output, partitioned) if parquet
              else export.open_output(args.output))
    with opened as out, config_redis(config, "cbserve export") as url:
        store = LoopStore(connect(url), loop)
        left = ""
        if args.transitions:
            c = export.export_transitions(store, start, out)
            what = f"{c.transitions} transitions of {c.episodes} episodes"
            left = (f"; left out: {c.unrewarded} steps awaiting their reward, {c.open_steps} last "
                    f"steps of live sessions, {c.gaps} episodes with steps missing from the log")
        elif parquet:
            n, labelled, left_out = export.export_parquet(store, start, out, partitioned)
            what = f"{n} decisions ({labelled} with rewards)"
            left = f"; left out: {left_out} events the Parquet layout cannot hold" if left_out else ""
        else:
            n, labelled, left_out = export.export_dsjson(store, start, out)
            what = f"{n} decisions ({labelled} with rewards)"
            left = f"; left out: {left_out} log entries that hold no decision" if left_out else ""
    print(f"exported {what} of loop {args.loop} to {args.output}{left}")
    return 0


def since_epoch(text: str) -> float:
    """Epoch seconds from an ISO-8601 time or a duration ago (``"2h"``, ``"7d"``)."""
    import datetime as dt

    from .config import duration

    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return time.time() - duration(text, "--since")
        except ConfigError as exc:
            raise CommandError("--since: must be an ISO-8601 time or a duration such as '2h'") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


DESCRIPTION = """\
A contextual-bandit decision service. 'serve' runs the API, the learner and an embedded
Redis in one process (or uses $REDIS_URL); 'api' (gunicorn workers) and 'learner' are
the production pieces, on the Redis of $REDIS_URL; 'export' writes a loop's log;
'train' learns a loop's policy from a log file; 'evaluate-features' measures what
each namespace of a log is worth; 'models' deploys and rolls back a
running service's model versions over HTTP;
'demo' plays simulated users against the example loops."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written; "(default: …)" after every option that has one."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def version() -> str:
    """The installed package's version, else setup.cfg's (a source checkout)."""
    from importlib import metadata

    try:
        return metadata.version("cbserve")
    except metadata.PackageNotFoundError:
        cfg = configparser.ConfigParser()
        cfg.read(os.path.join(os.path.dirname(__file__), os.pardir, "setup.cfg"))
        return cfg.get("metadata", "version", fallback="unknown")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cbserve", description=DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=os.environ.get("CBSERVE_CONFIG"),
                        help="TOML configuration (default: $CBSERVE_CONFIG)")

    def command(name, text):
        return sub.add_parser(name, parents=[common], help=text, description=text,
                              formatter_class=HelpFormatter)

    s = command("serve", "API + learner + embedded Redis (or $REDIS_URL) in one process")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8080, help="port to listen on")
    a = command("api", "API workers under gunicorn (needs $REDIS_URL)")
    a.add_argument("--bind", default="0.0.0.0:8080", help="gunicorn's address")
    a.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    a.add_argument("--threads", type=int, default=0,
                   help="threads per worker (gunicorn's gthread workers: keep-alive connections, "
                        "a stalled client holds one thread); 0: sync workers")
    a.add_argument("--no-auth", action="store_true",
                   help="serve without API keys (only behind a gateway that authenticates)")
    command("learner", "the learner (needs $REDIS_URL)")
    _export_args(command("export", "write a loop's log (DSJSON, Parquet or transitions)"))
    add_train_args(command("train", "train a loop's policy from a log file into a snapshot"))
    add_features_args(command("evaluate-features", "the value each namespace of a log carries: "
                                                   "trained without it, evaluated off-policy"))
    d = command("demo", "simulated users on the example loops")
    d.add_argument("--rounds", type=int, default=3000, help="rounds per loop")
    d.add_argument("--seed", type=int, default=0, help="seed of the simulated users")
    d.add_argument("--out", default="cbserve-demo", help="CSV and PNG directory; '' writes none")
    add_models_parser(sub, HelpFormatter)
    return p


def _export_args(e: argparse.ArgumentParser) -> None:
    e.add_argument("--loop", required=True, help="the loop whose log to write")
    e.add_argument("--since", help="ISO-8601 time or a duration ago (e.g. 24h); "
                                   "without it, the whole retained log")
    e.add_argument("-o", "--output", required=True,
                   help="file: .parquet for Parquet, .gz for gzip, else DSJSON lines; with "
                        "--format parquet and no .parquet suffix, a directory partitioned by day")
    e.add_argument("--format", choices=("dsjson", "parquet"),
                   help="default: from the output's name (.parquet: Parquet, else DSJSON)")
    e.add_argument("--transitions", action="store_true",
                   help="sequential loops: write (s, a, p, r, s', done) per step instead")


def cmd_demo(args, config: Config) -> int:
    from .sim.demo import run_demo

    if args.rounds < 1:
        raise CommandError(f"--rounds: must be at least 1, got {args.rounds}")
    for name in ("service", "cbserve"):  # the package's and the Flask app's: the demo's own output only
        logging.getLogger(name).setLevel(logging.WARNING)
    return run_demo(config, args.rounds, args.out or None, args.seed)


#: The example configuration ``cbserve demo`` uses when no ``--config`` is given.
EXAMPLE_CONFIG = os.path.join(os.path.dirname(__file__), os.pardir, "config", "example.toml")

COMMANDS = {"serve": cmd_serve, "api": cmd_api, "learner": cmd_learner, "export": cmd_export,
            "train": cmd_train, "evaluate-features": cmd_evaluate_features, "demo": cmd_demo}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command == "models":  # an HTTP client of a running service: no configuration
        return cmd_models(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    if args.command == "demo" and not args.config and os.path.exists(EXAMPLE_CONFIG):
        args.config = os.path.normpath(EXAMPLE_CONFIG)
    try:
        if not args.config:
            raise CommandError("--config: required (or set CBSERVE_CONFIG)")
        return COMMANDS[args.command](args, load_config(args.config))
    except ServiceError as exc:
        print(f"cbserve: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
