#!/usr/bin/env python3
"""Multi-slot recommendations through the real service: learning every slot, a slate's cost.

The production topology (gunicorn with ``--workers`` workers, a ``cbserve learner``
process, a redis-server, started as scripts/lifecycle.py starts them) serves two loops
with the same policy (LinUCB on one shared model) to the users of a seeded
:class:`~bandits.environments.PositionEnv`: ``--candidates`` items per request out of
1,000, a click with probability relevance(user, item) · 0.85 ** place (place 0 is the
top).

- ``carousel`` has ``--slots`` slots ``{id = "s<j>"}``: a rank fills every slot, each
  slot's click is sent as its reward (``{"values": {...}}``) and the learner learns
  every slot. ``--slot-features`` gives the slots a position feature: ``depth``
  (``{pos = {depth = j - 1}}``) or ``onehot`` (``{pos = {p<j> = 1}}``). A place's
  examination multiplies the click probability of every candidate alike, so the choice
  within a slot does not depend on it, and the default is none (docs/slots.md shows
  what each costs);
- ``single`` has no slots (one decision per request): the caller shows
  ``ranking[:slots]`` and can send only the chosen item's click (the top place); clicks
  on the other places are counted but never reach the learner.

The same ``--rounds`` users (same candidates, same uniform per place) visit both loops,
one client thread per loop, in blocks of ``--block`` rounds: a block's ranks, then its
rewards; before the next block the learner has read every reward and had
``publish_seconds`` to publish, so each block is served the model of every reward
before it, in both loops alike. Figures:

- ``click_ratio``: clicks on the carousel ÷ clicks on the single-slot loop (target
  >= 1.2); also the expected clicks of what each showed (the simulator's exact click
  probabilities, free of click noise) and those of the best lists;
- ``slate_ci_coverage``: :func:`replay.slates.slate_ci_coverage`, per estimator;
- rank latency in process (Flask test client on the same Redis), p50 / p99 of a
  ``--slots``-slot decision and of a single decision over the same candidates, and the
  ratio; rank throughput over HTTP (wrk, or a Python generator), best of
  ``--tp-rounds`` alternating rounds each, and the ratio.

Usage: python scripts/slots.py [--rounds 800] [--slots 5] [--candidates 50] [--seed 0]
       [--slot-features none|depth|onehot].
The last line is one JSON object. Exit status 1 if a loop's learner published no model
or a request failed.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
import tomllib

import redis

import lifecycle_steps as steps
from bandits.environments import PositionEnv
from service.app import create_app
from service.config import parse_config
from service.sim.traffic import HttpError, JsonClient
from service.testing.procs import production

POLICY = {"type": "linucb", "alpha": 0.1}
FEATURIZER = {"context_dim": 32, "action_dim": 16, "interaction_dim": 128, "action_id": False}
#: How often a user looks at place j (0 is the top): 0.85 ** j.
DECAY = 0.85
LOOPS = {"slots": "carousel", "single": "single"}


#: The slots' position features, by ``--slot-features``.
SLOT_FEATURES = {"none": lambda j: None, "depth": lambda j: {"pos": {"depth": float(j - 1)}},
                 "onehot": lambda j: {"pos": {f"p{j}": 1}}}


def config(n_slots: int, seed: int, publish_seconds: float, slot_features: str = "none") -> str:
    """Both loops: the same policy, featurizer and seed; the carousel with slots."""
    service = (f"[service]\nallow_anonymous = true\npublish_events = 100000\n"
               f"publish_seconds = {publish_seconds}\n[models]\ncheck_latency = \"1s\"\n")
    keys = {"policy": POLICY, "featurizer": FEATURIZER, "seed": seed, "reward_wait": "10m"}
    feats = SLOT_FEATURES[slot_features]
    slots = [{"id": f"s{j}", **({"features": feats(j)} if feats(j) else {})}
             for j in range(1, n_slots + 1)]
    return "\n".join([service, steps.loop_toml(LOOPS["single"], keys),
                      steps.loop_toml(LOOPS["slots"], {**keys, "slots": slots})])


class Arm:
    """One loop's side of the comparison: what it showed and what was clicked."""

    def __init__(self, kind: str, env: PositionEnv):
        self.kind, self.loop, self.env = kind, LOOPS[kind], env
        self.clicks = [0.0] * env.n_positions  # by place
        self.expected = self.best = 0.0
        self.versions: list = []
        self.errors: list = []
        self.blocks: list = []  # clicks of each block

    def play(self, client: JsonClient, rounds) -> None:
        """Rank every round of the block, then send the block's rewards."""
        rewards = []
        for t in rounds:
            try:
                rewards.append(self._round(client, t))
            except HttpError as exc:
                self.errors.append(str(exc))
        for path, body in rewards:
            try:
                client.call("POST", path, body)
            except HttpError as exc:
                self.errors.append(str(exc))

    def _round(self, client: JsonClient, t: int) -> tuple:
        """Rank round ``t`` and count its clicks; returns the reward request to send."""
        env, rnd = self.env, self.env.round(t)
        index = {aid: k for k, aid in enumerate(rnd.ids)}
        out = client.call("POST", f"/v1/loops/{self.loop}/rank",
                          {"context": rnd.context, "actions": rnd.actions, "event_id": f"r{t}"})
        if self.kind == "slots":
            shown = [index[s["chosen"]] for s in out["slots"]]
        else:
            shown = [index[r["id"]] for r in out["ranking"][:env.n_positions]]
        clicks = env.clicks(rnd, shown)
        if self.kind == "slots":
            reward = {"values": {s["id"]: c for s, c in zip(out["slots"], clicks.tolist())}}
        else:
            reward = {"value": float(clicks[0])}  # only the chosen item's click can be sent
        self.clicks = [a + b for a, b in zip(self.clicks, clicks.tolist())]
        self.expected += env.expected_clicks(rnd, shown)
        self.best += env.expected_clicks(rnd, env.best_list(rnd))
        self.versions.append(out["model"]["version"])
        return f"/v1/loops/{self.loop}/events/{out['event_id']}/reward", reward


def play(url: str, redis_url: str, arms: list, rounds: int, block: int, pause: float) -> None:
    """Both arms, one thread each, block by block; between blocks the learner reads
    every reward sent and has ``pause`` seconds to publish and the workers to follow."""
    clients = [JsonClient(url, timeout=60) for _ in arms]
    r = redis.Redis.from_url(redis_url)
    for start in range(0, rounds, block):
        span = range(start, min(start + block, rounds))
        threads = [threading.Thread(target=arm.play, args=(c, span))
                   for arm, c in zip(arms, clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 120
        while not all(steps.learner_read_all(r, arm.loop) for arm in arms):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the learner did not read block {start // block} in 120 s")
            time.sleep(0.05)
        time.sleep(pause)
        for arm in arms:
            arm.blocks.append(sum(arm.clicks) - sum(arm.blocks))
        print(f"  rounds {span.stop:>6}: clicks " + ", ".join(
            f"{a.loop} {sum(a.clicks):.0f} (v{a.versions[-1] if a.versions else 0})" for a in arms),
            flush=True)


def latency(redis_url: str, config_text: str, env: PositionEnv, start: int, n: int) -> dict:
    """p50 / p99 ms of in-process ranks (Flask test client, same Redis), alternating a
    slotted and a single decision over the same candidates."""
    app = create_app(parse_config(tomllib.loads(config_text)), redis.Redis.from_url(redis_url))
    client, ms = app.test_client(), {kind: [] for kind in LOOPS}
    for i in range(n + 20):  # the first 20 of each warm up
        rnd = env.round(start + i)
        for kind, loop in LOOPS.items():
            began = time.perf_counter()
            res = client.post(f"/v1/loops/{loop}/rank",
                              json={"context": rnd.context, "actions": rnd.actions})
            took = (time.perf_counter() - began) * 1000
            if res.status_code != 200:
                raise RuntimeError(f"rank {loop}: {res.status_code} {res.get_json()}")
            if i >= 20:
                ms[kind].append(took)
    return {kind: {"p50": round(pct(v, 0.5), 3), "p99": round(pct(v, 0.99), 3)}
            for kind, v in ms.items()}


def pct(values, q):
    """The q-quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def ci_coverage(args) -> dict | None:
    """Coverage of each slate estimator's interval over simulated slate logs."""
    from replay.slates import slate_ci_coverage

    out = slate_ci_coverage(n_logs=args.ci_logs, rounds=args.ci_rounds, seed=args.seed)
    return {k: round(v, 3) for k, v in out["coverage"].items()}


def figures(arms: dict, lat: dict, tp: dict, coverage, args, elapsed: float) -> dict:
    s, one = arms["slots"], arms["single"]

    def ratio(a, b):
        return round(a / b, 3) if b else None
    return {
        "click_ratio": ratio(sum(s.clicks), sum(one.clicks)),
        "clicks_slots": sum(s.clicks), "clicks_single": sum(one.clicks),
        "clicks_by_place_slots": s.clicks, "clicks_by_place_single": one.clicks,
        "clicks_by_block_slots": s.blocks, "clicks_by_block_single": one.blocks,
        "expected_click_ratio": ratio(s.expected, one.expected),
        "expected_clicks_slots": round(s.expected, 1),
        "expected_clicks_single": round(one.expected, 1),
        "expected_clicks_best": round(s.best, 1),
        "model_version_slots": max(s.versions, default=0),
        "model_version_single": max(one.versions, default=0),
        "request_errors": len(s.errors) + len(one.errors),
        "slate_ci_coverage": coverage,
        "latency_p50_ms_slots": lat["slots"]["p50"],
        "latency_p99_ms_slots": lat["slots"]["p99"],
        "latency_p50_ms_single": lat["single"]["p50"],
        "latency_p99_ms_single": lat["single"]["p99"],
        "latency_ratio_p50": ratio(lat["slots"]["p50"], lat["single"]["p50"]),
        "latency_ratio_p99": ratio(lat["slots"]["p99"], lat["single"]["p99"]),
        "throughput_rps_slots": round(tp["best"]["slots"], 1),
        "throughput_rps_single": round(tp["best"]["single"], 1),
        "throughput_ratio": ratio(tp["best"]["slots"], tp["best"]["single"]),
        "throughput_generator": tp["generator"],
        "rounds": args.rounds, "slots": args.slots, "candidates": args.candidates,
        "block": args.block, "seed": args.seed, "slot_features": args.slot_features,
        "workers": args.workers,
        "seconds": round(elapsed, 1)}


def table(f: dict) -> None:
    cov = f["slate_ci_coverage"]
    rows = [
        ("clicks, every slot learned / slot 1 only",
         f"{f['clicks_slots']:.0f} / {f['clicks_single']:.0f}", ""),
        ("click_ratio", f["click_ratio"], "target >= 1.2"),
        ("expected clicks, slots / single / best lists",
         f"{f['expected_clicks_slots']} / {f['expected_clicks_single']} / "
         f"{f['expected_clicks_best']}", ""),
        ("clicks by place, slots", " ".join(f"{c:.0f}" for c in f["clicks_by_place_slots"]), ""),
        ("clicks by place, single", " ".join(f"{c:.0f}" for c in f["clicks_by_place_single"]), ""),
        ("clicks by block, slots", " ".join(f"{c:.0f}" for c in f["clicks_by_block_slots"]), ""),
        ("clicks by block, single", " ".join(f"{c:.0f}" for c in f["clicks_by_block_single"]), ""),
        ("model versions served at the end, slots / single",
         f"{f['model_version_slots']} / {f['model_version_single']}", ""),
        ("slate_ci_coverage", "n/a" if cov is None else
         ", ".join(f"{k} {v}" for k, v in cov.items()), "nominal 0.95"),
        ("rank p50 ms, slots / single (ratio)",
         f"{f['latency_p50_ms_slots']} / {f['latency_p50_ms_single']} ({f['latency_ratio_p50']})",
         "in process"),
        ("rank p99 ms, slots / single (ratio)",
         f"{f['latency_p99_ms_slots']} / {f['latency_p99_ms_single']} ({f['latency_ratio_p99']})",
         ""),
        ("rank req/s, slots / single (ratio)",
         f"{f['throughput_rps_slots']} / {f['throughput_rps_single']} ({f['throughput_ratio']})",
         f"{f['throughput_generator']}, {f['workers']} workers"),
    ]
    print(f"\n{f['rounds']} rounds, {f['slots']} slots, {f['candidates']} candidates, "
          f"seed {f['seed']}, {f['seconds']} s in all")
    for label, value, note in rows:
        print(f"{label:<52}{value!s:>36}  {note}")


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=800, help="users shown a list (default 800)")
    p.add_argument("--slots", type=int, default=5, help="places in the list (default 5)")
    p.add_argument("--candidates", type=int, default=50, help="candidates per request (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slot-features", choices=sorted(SLOT_FEATURES), default="none",
                   help="the carousel's slots' position feature (default none)")
    p.add_argument("--block", type=int, default=100, help="rounds between model refreshes")
    p.add_argument("--publish-seconds", type=float, default=0.5,
                   help="the learner's publish_seconds (default 0.5)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--latency-n", type=int, default=500, help="in-process ranks of each kind")
    p.add_argument("--tp-rounds", type=int, default=3, help="throughput rounds of each kind")
    p.add_argument("--tp-seconds", type=int, default=5, help="length of a throughput round")
    p.add_argument("--ci-logs", type=int, default=200, help="simulated logs of slate_ci_coverage")
    p.add_argument("--ci-rounds", type=int, default=3000, help="slates per simulated log")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not 1 <= args.slots < args.candidates or args.rounds < 1 or args.block < 1:
        parser().error("need 1 <= --slots < --candidates, --rounds >= 1 and --block >= 1")
    env = PositionEnv(n_candidates=args.candidates, n_positions=args.slots, decay=DECAY,
                      seed=args.seed)
    text = config(args.slots, args.seed, args.publish_seconds, args.slot_features)
    began = time.monotonic()
    arms = {kind: Arm(kind, env) for kind in LOOPS}
    try:
        with production(text, args.workers) as deployed:
            play(deployed.api.url, deployed.redis_url, list(arms.values()), args.rounds,
                 args.block, args.publish_seconds + 1.0)
            lat = latency(deployed.redis_url, text, env, args.rounds, args.latency_n)
            bodies = [{"context": r.context, "actions": r.actions}
                      for r in env.rounds(200, start=args.rounds + args.latency_n + 20)]
            tp = steps.throughput(deployed.api.url, steps.write_bodies(deployed.tmp, bodies),
                                  deployed.tmp, LOOPS, args.tp_rounds, args.tp_seconds, 4)
    except RuntimeError as exc:
        print(f"slots: {exc}", file=sys.stderr)
        return 1
    coverage = ci_coverage(args)
    f = figures(arms, lat, tp, coverage, args, time.monotonic() - began)
    table(f)
    print(json.dumps(f))
    failed = f["request_errors"] or not f["model_version_slots"] or not f["model_version_single"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
