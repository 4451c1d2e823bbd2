"""``cbserve demo``: the embedded service, simulated users on every example loop, and
where the learned policy ended against uniform random and the best fixed action.

Runs on a fresh embedded Redis in a temporary directory, so it never mixes with (or
resumes from) a real ``cbserve serve`` data directory.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time

from bandits.environments import make_environment

from ..errors import CommandError
from .report import plot, slug, table, write_csv
from .traffic import JsonClient, check_log, drive


def env_for_loop(name: str, action_ids, seed: int = 0):
    """UI treatments for a loop of 4-8 fixed actions, a catalogue for per-request ones."""
    return make_environment({**env_spec_for_loop(name, action_ids), "seed": seed})


def env_spec_for_loop(name: str, action_ids) -> dict:
    """The specification (without seed) of :func:`env_for_loop`'s environment."""
    if not action_ids:
        return {"type": "catalogue"}
    if 4 <= len(action_ids) <= 8:
        return {"type": "treatments", "actions": list(action_ids)}
    raise CommandError(f"loops.{name}: the simulator knows 4-8 UI treatments or per-request "
                       f"candidates; this loop has {len(action_ids)} fixed actions (choose --env)")


def progress_bar(total: int, desc: str, unit: str = "round"):
    """A tqdm bar's ``update`` (None without tqdm) and a closer."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None, lambda: None
    bar = tqdm(total=total, desc=desc, unit=unit, leave=False)
    return bar.update, bar.close


def describe(loop, traj, version: int, check) -> str:
    s = traj.summary()
    means = traj.action_means()
    fixed = f" ({max(means, key=means.get)})" if loop.actions else " (most popular items)"
    gain_u = s["final_expected"] / s["final_uniform"] - 1
    gain_b = s["final_expected"] / s["final_best_fixed"] - 1
    return (f"{traj.label}: {s['rounds']} rounds, model version {version}\n"
            f"  expected reward per round over the last 20% of rounds:\n"
            f"    learned policy {s['final_expected']:.4f}   uniform random {s['final_uniform']:.4f}"
            f"   best fixed action{fixed} {s['final_best_fixed']:.4f}   optimal {s['final_optimal']:.4f}\n"
            f"  learned vs uniform {gain_u:+.0%}, vs best fixed action {gain_b:+.0%}\n"
            f"  log: {check}")


def run_demo(config, rounds: int, out_dir: str | None, seed: int = 0, say=print) -> int:
    """Serve ``config`` on a temporary embedded Redis and drive every bandit loop."""
    from ..store import connect
    from ..embedded import RunningService
    from ..embedded_redis import EmbeddedRedis

    data_dir = tempfile.mkdtemp(prefix="cbserve-demo-")
    config = dataclasses.replace(config, data_dir=data_dir)
    loops = [loop for loop in config.loops.values() if not loop.sequential]
    failed, groups = False, {}
    try:
        with EmbeddedRedis(data_dir, "cbserve demo") as server, \
                RunningService(config, connect(server.url)) as svc:
            say(f"cbserve demo: service on {svc.url}, embedded Redis in {data_dir}")
            http = JsonClient(svc.url)
            http.wait_healthy()
            for loop in loops:
                env = env_for_loop(loop.name, [a["id"] for a in loop.actions or []], seed)
                say(f"\n{loop.name}: {env.describe()}")
                since = int(time.time() * 1000) - 1
                update, close = progress_bar(rounds, loop.name)
                try:
                    traj = drive(http, loop.name, env, rounds, progress=update)
                finally:
                    close()
                time.sleep(config.publish_seconds + 0.5)  # let the learner publish the tail
                version = http.call("GET", f"/v1/loops/{loop.name}")["model"]["version"]
                check = check_log(svc.client, loop.name, traj, since)
                failed |= not check.ok
                say(describe(loop, traj, version, check))
                groups[f"{loop.name} — {env.describe()}"] = [traj]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    say("\n" + table([trajs[0].summary() for trajs in groups.values()]))
    if out_dir:
        _write(groups, out_dir, say)
    return 1 if failed else 0


def _write(groups, out_dir, say):
    os.makedirs(out_dir, exist_ok=True)
    for trajs in groups.values():
        write_csv(trajs[0], os.path.join(out_dir, slug(trajs[0].label) + ".csv"))
    try:
        plot(groups, os.path.join(out_dir, "demo.png"))
        say(f"wrote {out_dir}/demo.png and one CSV per loop")
    except ImportError:
        say(f"wrote one CSV per loop to {out_dir}/ (no plot: pip install 'cbserve[sim]')")
