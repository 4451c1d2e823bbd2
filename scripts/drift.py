#!/usr/bin/env python3
"""Drift detection and correction, measured through the learner and a real Redis.

A redis-server process is started (as the tests and benchmarks do); each run flushes
it, serves one loop with the service's own :class:`service.loops.LoopService`
(decide, sample, log through the rank script), sends every reward through the reward
script at once, and runs an in-process :class:`service.learner.LoopLearner` every
``--step`` events: the detectors, their saved state, the corrections (serving pointer,
registry, audit) are the service's own. Detections are read back from the loop's
audit stream.

The loop picks one of 4 treatments with ε-greedy (ε = 0.05, a ridge model per
treatment); contexts are ``user`` (segment, age) and ``device`` (os), which do not
change the rewards. Click rates are 0.10, 0.06, 0.04, 0.03.

- false alarms: stationary streams of ``--events`` (100k) events, ``--seeds`` seeds:
  reward-drift detections per 100k events;
- detection delay: at event 20,000 the best treatment's rate drops to 0.05 and the
  second's rises to 0.09 (it becomes best): events from the change to the first
  detection, with ``on_reward_drift = "alert"``;
- feature drift: the ``user`` namespace's segment mix and age shift, at the start of
  the third window (even seeds) or in its middle (odd seeds): windows
  (``drift.window`` events) from the shift until a context drift is audited;
- recovery: reward over the 20,000 events after the change with
  ``on_reward_drift = "reset"`` (and ``"explore"``) divided by the same without a
  correction (``"alert"``), mean over seeds.

Runs go ``--jobs`` at a time, each with its own redis-server (on its unix socket).

Usage: python scripts/drift.py [--quick]. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import statistics
import sys
import time

import numpy as np
import redis

from service.api.requests import RankRequest
from service.config import parse_config
from service.learner import LoopLearner
from service.loops import LoopService
from service.testing.redis_server import RedisServer

LOOP = "hero"
ACTIONS = ["hero-a", "hero-b", "hero-c", "hero-d"]
RATES = np.array([0.10, 0.06, 0.04, 0.03])
CHANGED = np.array([0.05, 0.09, 0.04, 0.03])
SEGMENTS = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]
MIX = np.array([0.30, 0.20, 0.15, 0.10, 0.10, 0.07, 0.05, 0.03])
SHIFTED_MIX = MIX[::-1].copy()
CHANGE_AT = 20_000
AFTER = 20_000


def config(mode: str, window: int, step: int):
    raw = {"service": {"publish_events": step, "publish_seconds": 3600.0},
           "models": {"check_latency": "1s"},
           "loops": {LOOP: {
               "actions": ACTIONS, "seed": 1, "reward_wait": "10m",
               "policy": {"type": "epsilon_greedy", "epsilon": 0.05, "model": "disjoint"},
               "featurizer": {"context_dim": 8, "interaction_dim": 0, "action_id": False},
               "drift": {"on_reward_drift": mode, "window": window}}}}
    return parse_config(raw)


class Stream:
    """Seeded contexts and Bernoulli clicks; ``change_at`` moves the rates, ``shift_at``
    the ``user`` namespace's distribution."""

    def __init__(self, seed: int, change_at=None, shift_at=None):
        self.rng = np.random.default_rng(seed)
        self.change_at, self.shift_at = change_at, shift_at

    def context(self, i: int) -> dict:
        shifted = self.shift_at is not None and i >= self.shift_at
        seg = self.rng.choice(len(SEGMENTS), p=SHIFTED_MIX if shifted else MIX)
        age = self.rng.normal(50.0 if shifted else 35.0, 10.0)
        return {"user": {"segment": SEGMENTS[seg], "age": round(float(age), 1)},
                "device": {"os": "ios" if self.rng.random() < 0.45 else "android"}}

    def reward(self, i: int, chosen: int) -> float:
        rates = CHANGED if self.change_at is not None and i >= self.change_at else RATES
        return float(self.rng.random() < rates[chosen])


def run(client, seed: int, n: int, mode: str = "alert", change_at=None, shift_at=None,
        window: int = 5000, step: int = 500) -> dict:
    """One stream through the service's store and learner: rewards and audit entries."""
    client.flushall()
    cfg = config(mode, window, step)
    loop = cfg.loops[LOOP]
    service, learner = LoopService(client, loop, cfg), LoopLearner(client, loop, cfg)
    stream, rewards = Stream(seed, change_at, shift_at), np.zeros(n)
    index = {a: k for k, a in enumerate(ACTIONS)}
    for i in range(n):
        req = RankRequest(context=stream.context(i), actions=None, event_id=f"{seed}-{i}",
                          defer=False, exclude=frozenset(), k=None)
        body = service.rank(req, time.perf_counter())
        rewards[i] = stream.reward(i, index[body["chosen"]])
        service.store.reward(body["event_id"], rewards[i])
        if (i + 1) % step == 0:
            while learner.step():
                pass
    learner.release()
    audit = [f for _, f in reversed(service.registry.audit(1000))]
    return {"rewards": rewards, "audit": audit}


def detections(audit: list, kind: str) -> list:
    """The events seen by the detector at each audited detection of ``kind``."""
    return [json.loads(f["figures"]).get("events") for f in audit
            if f["action"] == "drift" and f["reason"].startswith(kind)]


def job(spec: tuple) -> dict:
    """One run on its own redis-server (jobs run in parallel processes)."""
    kind, seed, mode, n, window = spec
    with RedisServer() as server:
        client = redis.Redis.from_url(server.unix_url)
        try:
            if kind == "stationary":
                out = run(client, seed, n, window=window)
            elif kind == "change":
                out = run(client, seed, n, mode, change_at=CHANGE_AT, window=window)
            else:
                out = run(client, seed, n, shift_at=feature_shift(seed, window), window=window)
        finally:
            client.close()
    rewards = out["rewards"]
    return {"kind": kind, "seed": seed, "mode": mode, "n": n,
            "reward": float(rewards.mean()),
            "after": float(rewards[CHANGE_AT:CHANGE_AT + AFTER].mean()) if kind == "change" else None,
            "reward_at": detections(out["audit"], "reward"),
            "context_at": detections(out["audit"], "context"),
            "corrections": sum(1 for f in out["audit"] if f["action"] == "correction")}


def feature_shift(seed: int, window: int) -> int:
    """Where the ``user`` namespace shifts: at a window's start (even seeds) or in its
    middle (odd seeds)."""
    return 2 * window + (window // 2 if seed % 2 else 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer seeds and events (a smoke run)")
    p.add_argument("--seeds", type=int, help="seeds of the change and feature runs (default 4; quick 1)")
    p.add_argument("--stationary", type=int, help="stationary streams (default 3; quick 1)")
    p.add_argument("--events", type=int, help="events per stationary stream (default 100000; quick 20000)")
    p.add_argument("--explore-seeds", type=int,
                   help="seeds also run with on_reward_drift = explore (default 2; quick 1)")
    p.add_argument("--window", type=int, default=5000, help="drift.window (default 5000)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the corrections' warnings are in the audit
    seeds = _or(args.seeds, 1 if args.quick else 4)
    n_stat = _or(args.events, 20_000 if args.quick else 100_000)
    n_fa = _or(args.stationary, 1 if args.quick else 3)
    n_explore = _or(args.explore_seeds, 1 if args.quick else 2)
    began = time.monotonic()
    specs = [("stationary", 100 + s, "alert", n_stat, args.window) for s in range(n_fa)]
    for s in range(seeds):
        modes = ("alert", "reset") + (("explore",) if s < n_explore else ())
        specs += [("change", 200 + s, mode, CHANGE_AT + AFTER, args.window) for mode in modes]
        specs.append(("feature", 300 + s, "alert", feature_shift(300 + s, args.window)
                      + 3 * args.window, args.window))
    specs.sort(key=lambda x: -x[3])  # longest first: the pool ends together
    print(f"{'run':<22}{'seed':>5}{'events':>9}{'reward':>9}{'after':>8}  detected at (events)")
    results = []
    with multiprocessing.get_context("fork").Pool(max(1, args.jobs)) as pool:
        for res in pool.imap_unordered(job, specs):
            results.append(res)
            name = res["kind"] + ("" if res["kind"] != "change" else f", {res['mode']}")
            at = res["context_at"] if res["kind"] == "feature" else res["reward_at"]
            after = "" if res["after"] is None else f"{res['after']:.4f}"
            print(f"{name:<22}{res['seed']:>5}{res['n']:>9}{res['reward']:>9.4f}{after:>8}  {at}",
                  flush=True)
    result = summary(results, args.window)
    result.update(seeds=seeds, quick=args.quick, seconds=round(time.monotonic() - began, 1))
    print(json.dumps(result))
    return 0


def summary(results: list, window: int) -> dict:
    """The figures of the last line, from every run's result."""
    stat = [r for r in results if r["kind"] == "stationary"]
    events = sum(r["n"] for r in stat)
    alarms = sum(len(r["reward_at"]) for r in stat)
    by = {(r["seed"], r["mode"]): r for r in results if r["kind"] == "change"}
    delays = []
    for (seed, mode), r in sorted(by.items()):
        if mode == "alert":
            late = [e for e in r["reward_at"] if e > CHANGE_AT]
            delays.append(late[0] - CHANGE_AT if late else None)
    found = [d for d in delays if d is not None]

    def ratio(mode):
        values = [r["after"] / by[(seed, "alert")]["after"] for (seed, m), r in by.items()
                  if m == mode and by[(seed, "alert")]["after"] > 0]
        return round(float(np.mean(values)), 3) if values else None

    windows, early = [], 0
    for r in (r for r in results if r["kind"] == "feature"):
        shift = feature_shift(r["seed"], window)
        early += sum(1 for e in r["context_at"] if e <= shift)
        late = [e for e in r["context_at"] if e > shift]
        windows.append(-(-(late[0] - shift) // window) if late else None)
    return {
        "false_alarms_per_100k": round(alarms * 100_000 / events, 3) if events else None,
        "stationary_events": events,
        "detection_delay_events": {"median": statistics.median(found) if found else None,
                                   "max": max(found) if found else None,
                                   "missed": len(delays) - len(found)},
        "feature_drift_detected_in_windows": (max(windows) if windows and None not in windows
                                              else None),
        "feature_drift_false_alarms": early,
        "recovery_ratio": ratio("reset"),
        "recovery_ratio_explore": ratio("explore"),
    }


def _or(value, default):
    return default if value is None else value


def _row(name, seed, n, reward, det) -> None:
    print(f"{name:<26}{seed:>5}{n:>9}{reward:>9.4f}{str(det):>12}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
