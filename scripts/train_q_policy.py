"""From logs to a served Q-network: the worked path of escalating a loop to sequential RL.

With no ``--transitions`` it runs the whole path against a real service (``cbserve
serve`` in a subprocess, on a real redis-server) and the seeded session environment of
:mod:`bandits.environments.engagement`, where click-bait wins each step but lowers later
engagement:

1. bandit loops learn online over HTTP; the sequential loop ``shop`` explores with
   ε-greedy (ε = 0.5): the logs offline RL needs cover every action in every state;
2. ``cbserve export --transitions`` writes (s, a, p, r, s', done) of ``shop``;
3. fitted Q-iteration (numpy, :mod:`bandits.offline.fitted_q`) trains a Q-network, written as
   ONNX next to a config that switches ``shop`` to ``type = "qnetwork"``;
4. per-decision importance sampling estimates its return from the logs (the
   pre-deployment check), then the service restarts with the new config only and
   serves it; episodes over HTTP measure what it earns.

With ``--transitions FILE`` it trains on your own export, writes the ONNX file and
prints the off-policy estimate (steps 3 and 4 without serving).

Usage: python scripts/train_q_policy.py [--out DIR] [--collect N] [--learn N] [--eval N]
       python scripts/train_q_policy.py --transitions FILE --actions a,b,c [--state JSON]
Last line: JSON with q_policy_return, best_bandit_return, ratio (and every figure).
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from bandits import make_policy
from bandits.environments.engagement import ACTIONS, EngagementEnv
from bandits.offline.fitted_q import fitted_q
from bandits.offline.onnx_mlp import mlp_onnx
from bandits.state import StateEncoder
from replay.sequential import evaluate_policy, read_transitions
from service.sim.traffic import JsonClient
from service.testing.redis_server import RedisServer, free_port

STATE = {"features": ["user.engagement", "user.affinity"], "history": 2, "step": True}
EPSILON = 0.05
#: The bandit loops measured against the Q-network, and the exploring logger.
BANDITS = {
    "shop": {"type": "epsilon_greedy", "epsilon": 0.5},
    "shop-linucb": {"type": "linucb", "alpha": 0.5},
    "shop-greedy": {"type": "epsilon_greedy", "epsilon": 0.1},
    "shop-uniform": {"type": "epsilon_greedy", "epsilon": 1.0},
}


def run_episodes(port: int, loop: str, n: int, seed: int, tag: str) -> list:
    """Play ``n`` sessions of the environment through the service; returns each return."""
    client, env, returns = JsonClient(f"http://127.0.0.1:{port}"), EngagementEnv(seed=seed), []
    for ep in range(n):
        context, done, total, session = env.reset(), False, 0.0, f"{tag}-{ep}"
        while not done:
            out = client.call("POST", f"/v1/loops/{loop}/rank", {"session_id": session, "context": context})
            reward, done = env.step(out["chosen"])
            client.call("POST", f"/v1/loops/{loop}/events/{out['event_id']}/reward",
                        {"value": reward, "end": done})
            total += reward
            context = env.context()
        returns.append(total)
    return returns


def toml(value) -> str:
    """TOML for the small values of a loop config (strings, numbers, lists, tables)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def write_config(path: str, policies: dict) -> None:
    lines = ["[service]", "publish_events = 50", "publish_seconds = 1", ""]
    for name, policy in policies.items():
        lines += [f"[loops.{name}]", f"actions = {toml(list(ACTIONS))}",
                  f"policy = {toml(policy)}", "featurizer = { context_dim = 8 }",
                  'reward_wait = "1m"', "session = { ttl = \"10m\", history = 10 }",
                  f"seed = {len(lines)}", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


@contextlib.contextmanager
def service(config: str, redis_url: str, log):
    """``cbserve serve`` on a free port against ``redis_url``; yields the port."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--config", config,
                             "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cbserve serve did not start (see {log.name})")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def train(records: list, actions: list, state: dict, out_dir: str, seed: int) -> tuple:
    """Fitted Q-iteration on exported transitions; returns (onnx path, seconds)."""
    enc = StateEncoder(state, actions)
    X = np.array([enc.encode(t["s"]) for t in records])
    X_next = np.array([enc.encode(t["s_next"]) if t["s_next"] else np.zeros(enc.dim)
                       for t in records])
    index = {a: i for i, a in enumerate(actions)}
    A = np.array([index[t["action"]] for t in records])
    R = np.array([t["r"] for t in records])
    done = np.array([t["done"] for t in records])
    started = time.perf_counter()
    layers = fitted_q(X, A, R, X_next, done, len(actions), seed=seed)
    seconds = time.perf_counter() - started
    path = os.path.join(out_dir, "q_policy.onnx")
    with open(path, "wb") as fh:
        fh.write(mlp_onnx(layers))
    return path, seconds


def off_policy(records, model, actions, state) -> dict:
    policy = make_policy({"type": "qnetwork", "model": model, "action_ids": actions,
                          "state": state, "epsilon": EPSILON})
    return {k: e.to_dict() for k, e in evaluate_policy(records, policy).items()}


def worked_path(args, out_dir: str) -> dict:
    log = open(os.path.join(out_dir, "service.log"), "ab")
    cfg = os.path.join(out_dir, "bandits.toml")
    write_config(cfg, BANDITS)
    returns = {}
    with RedisServer() as redis_server:
        with service(cfg, redis_server.url, log) as port:
            def bandit(loop):
                n = args.collect if loop == "shop" else args.learn + args.eval
                returns[loop] = run_episodes(port, loop, n, args.seed + 1, loop)[-args.eval:]
            threads = [threading.Thread(target=bandit, args=(loop,)) for loop in BANDITS]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if len(returns) != len(BANDITS):
            raise RuntimeError(f"a bandit loop failed (see {log.name})")
        transitions = os.path.join(out_dir, "shop.transitions.jsonl")
        subprocess.run([sys.executable, "-m", "service.cli", "export", "--config", cfg,
                        "--loop", "shop", "--transitions", "-o", transitions], check=True,
                       env={**os.environ, "REDIS_URL": redis_server.url})
        records = read_transitions(transitions)
        model, fit_s = train(records, list(ACTIONS), STATE, out_dir, args.seed)
        ope = off_policy(records, model, list(ACTIONS), STATE)
        q_cfg = os.path.join(out_dir, "qnetwork.toml")
        write_config(q_cfg, {**BANDITS, "shop": {"type": "qnetwork", "model": model,
                                                  "state": STATE, "epsilon": EPSILON}})
        with service(q_cfg, redis_server.url, log) as port:
            returns["qnetwork"] = run_episodes(port, "shop", args.eval, args.seed + 1, "q")
    means = {k: float(np.mean(v)) for k, v in returns.items()}
    best = max((k for k in BANDITS), key=lambda k: means[k])
    return {"q_policy_return": means["qnetwork"], "best_bandit_return": means[best],
            "ratio": means["qnetwork"] / means[best], "best_bandit": best,
            "returns": {("shop (ε=0.5, logger)" if k == "shop" else k): v for k, v in means.items()},
            "sem": {k: float(np.std(v, ddof=1) / np.sqrt(len(v))) for k, v in returns.items()},
            "transitions": len(records), "fit_s": fit_s, "ope": ope, "model": model,
            "config": q_cfg}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="directory for the transitions, model and configs "
                                 "(default: a new temporary directory)")
    p.add_argument("--collect", type=int, default=3000, help="episodes logged for training")
    p.add_argument("--learn", type=int, default=1000, help="episodes bandits learn before --eval")
    p.add_argument("--eval", type=int, default=1000, help="episodes each policy is measured on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--transitions", help="train on this export instead of the worked path")
    p.add_argument("--actions", help="with --transitions: the action ids, comma-separated")
    p.add_argument("--state", help="with --transitions: the state encoding as JSON")
    args = p.parse_args(argv)
    for flag in ("collect", "learn", "eval"):
        if getattr(args, flag) < 2:
            p.error(f"--{flag}: must be at least 2")
    out_dir = args.out or tempfile.mkdtemp(prefix="cbserve-q-")
    os.makedirs(out_dir, exist_ok=True)
    if args.transitions:
        if not args.actions:
            p.error("--actions: required with --transitions")
        try:
            state = json.loads(args.state) if args.state else STATE
        except json.JSONDecodeError as exc:
            p.error(f"--state: not valid JSON: {exc}")
        records = read_transitions(args.transitions)
        actions = args.actions.split(",")
        model, fit_s = train(records, actions, state, out_dir, args.seed)
        result = {"model": model, "transitions": len(records), "fit_s": fit_s,
                  "ope": off_policy(records, model, actions, state)}
        print(json.dumps(result))
        return 0
    result = worked_path(args, out_dir)
    print(f"{'policy':<28}{'return/episode':>16}{'± s.e.':>9}")
    for name, value in result["returns"].items():
        key = "shop" if name.startswith("shop (") else name
        print(f"{name:<28}{value:>16.3f}{result['sem'][key]:>9.3f}")
    for name, e in result["ope"].items():
        print(f"off-policy {name:<17}{e['value']:>16.3f}   [{e['low']:.3f}, {e['high']:.3f}]")
    print(f"Q-network / best bandit ({result['best_bandit']}): {result['ratio']:.2f}   "
          f"({result['transitions']} transitions, fit {result['fit_s']:.1f} s; files in {out_dir})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
