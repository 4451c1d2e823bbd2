"""The parts of ``scripts/lifecycle.py``: the service's configuration, deploys under load,
the gate's runs in a simulated environment, and rank throughput with and without
challengers. Each part takes the running service's URL and returns its figures.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from bandits.environments import LogisticEnv
from service.sim.traffic import JsonClient, check_decisions
from service.store import connect, keys
from service.testing.load import drive

SERVICE = """
[service]
allow_anonymous = true
publish_events = 1000      # the version a challenger is promoted as serves about this many
publish_seconds = 600.0    # decisions before the learner publishes its successor
[models]
check_latency = "200ms"   # the decide p99 of the checks, on a 2-core host under load
"""
#: The champion: ε-greedy on a shared model without context x action interactions, so
#: the context shifts every action's score alike and never changes its choice.
CHAMPION = {"type": "epsilon_greedy", "epsilon": 0.2}
CHAMPION_FEATURIZER = {"interaction_dim": 0}
#: One better challenger (LinUCB with the default featurizer: the context interacts with
#: each action) and one worse (ε = 1: uniformly random choices).
CHALLENGERS = ({"name": "linucb", "policy": {"type": "linucb", "alpha": 0.5}, "featurizer": {}},
               {"name": "uniform", "policy": {"type": "epsilon_greedy", "epsilon": 1.0}})
BETTER, WORSE = "linucb", "uniform"
#: 4 actions whose click probability is sigmoid(2 (bias_k + W_k·x)), x 6 user features.
ENV = {"n_actions": 4, "n_features": 6, "scale": 2.0}
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml(value) -> str:
    """``value`` (JSON-like) as a TOML value: inline tables for dicts."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k if _BARE.match(k) else json.dumps(k)} = {toml(v)}"
                               for k, v in value.items()) + "}"
    return "[" + ", ".join(toml(v) for v in value) + "]"


def loop_toml(name: str, keys: dict, challengers=(), **tables) -> str:
    """``[loops.<name>]`` with ``keys``, sub-tables (``promotion={...}``) and challengers."""
    out = [f"[loops.{name}]"] + [f"{k} = {toml(v)}" for k, v in keys.items()]
    for table, values in tables.items():
        out += [f"[loops.{name}.{table}]"] + [f"{k} = {toml(v)}" for k, v in values.items()]
    for ch in challengers:
        out += [f"[[loops.{name}.challengers]]"] + [f"{k} = {toml(v)}" for k, v in ch.items()]
    return "\n".join(out) + "\n"


def gate_loop(seed: int, window: int, interval: str, min_ess: float = 100) -> str:
    """The loop of one seeded run of the gate: the environment's fixed actions."""
    env = LogisticEnv(seed=seed, **ENV)
    keys = {"policy": CHAMPION, "featurizer": CHAMPION_FEATURIZER, "actions": env.actions,
            "seed": seed, "reward_wait": "10m"}
    return loop_toml(f"gate-{seed}", keys, CHALLENGERS, evaluation={"window": window},
                     promotion={"mode": "auto", "min_events": 1000, "min_ess": min_ess,
                                "margin": 0.0, "interval": interval})


# -- deploys under load --------------------------------------------------------------

def served_by_all(url: str, loop: str, version: int, pids: set, since: float,
                  timeout: float = 10.0) -> float | None:
    """Seconds from ``since`` until every worker in ``pids`` answered with ``version``
    (GET /v1/loops/<loop> on a new connection each time, as the kernel spreads those
    over the workers); None after ``timeout``."""
    waiting = set(pids)
    while waiting and time.monotonic() - since < timeout:
        served = JsonClient(url, timeout=10).call("GET", f"/v1/loops/{loop}")["served"]
        if served["version"] == version:
            waiting.discard(served["worker"])
    return None if waiting else time.monotonic() - since


def _rank_reward(url, loop, bodies, indices) -> None:
    client = JsonClient(url)
    for i in indices:
        out = client.call("POST", f"/v1/loops/{loop}/rank", bodies[i % len(bodies)])
        client.call("POST", f"/v1/loops/{loop}/events/{out['event_id']}/reward",
                    {"value": float(out["chosen"] < "item-250")})


def _rank_load(url, loop, bodies, acked, lock, stop, offset) -> None:
    """Rank ``bodies`` in turn until ``stop``; 200 answers go to ``acked``."""
    client, i = JsonClient(url, timeout=30), offset
    while not stop.is_set():
        status, data = client.request("POST", f"/v1/loops/{loop}/rank", bodies[i % len(bodies)])
        i += 1
        if status == 200:
            with lock:
                acked[data["event_id"]] = (data["chosen"], data["probability"])
        else:
            with lock:
                acked.setdefault("errors", []).append(status)


def deploys(url: str, redis_url: str, loop: str, bodies: list, n: int, pids: set,
            clients: int = 2) -> dict:
    """Learn two versions, then ``n`` deploys alternating between them under rank load;
    each deploy's time until every worker serves it, and acknowledged ranks missing from
    the log. Rewarded ranks go in until the learner published two versions; what it
    learned since waits ``publish_seconds`` (600 s), so no publication moves the pointer
    during the deploys."""
    client, sent, r = JsonClient(url), 0, connect(redis_url)
    deadline = time.monotonic() + 300  # a learner at nice 10 on a busy host lags
    while len(served_versions(client, loop)) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"loop {loop}: the learner published no second version within "
                               f"300 s ({sent} rewarded ranks sent)")
        if not learner_read_all(r, loop):  # more now would publish a third version later
            time.sleep(0.2)
            continue
        warm = [threading.Thread(target=_rank_reward, args=(url, loop, bodies, range(i, i + 50)))
                for i in range(sent, sent + 200, 50)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        sent += 200
    time.sleep(1.0)  # every worker serves the second version
    versions = served_versions(client, loop)[-2:]
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    since_ms = int(time.time() * 1000)
    threads = [threading.Thread(target=_rank_load,
                                args=(url, loop, bodies, acked, lock, stop, i * 37))
               for i in range(clients)]
    for t in threads:
        t.start()
    seconds, refused = [], []
    try:
        for i in range(n):
            version = versions[i % 2]
            started = time.monotonic()
            status, body = client.request("POST", f"/v1/loops/{loop}/deploy", {
                "version": version, "learn": bool(i % 2), "reason": f"lifecycle deploy {i + 1}"})
            answered = time.monotonic() - started
            if status != 200:
                refused.append((status, body))
                continue
            total = served_by_all(url, loop, version, pids, started)
            seconds.append((answered, None if total is None else total - answered))
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    errors = acked.pop("errors", [])
    check = check_decisions(connect(redis_url), loop, acked, since_ms)
    return {"seconds": seconds, "versions": versions, "refused": refused,
            "acknowledged": check.checked, "lost": check.missing + check.mismatched,
            "rank_errors": len(errors)}


def learner_read_all(r, loop: str) -> bool:
    """Whether the learner's consumer group has read every joined event of the loop."""
    stream = keys.joined(loop)
    if not r.exists(stream):
        return True
    last = r.xinfo_stream(stream)["last-generated-id"]
    return any(g["last-delivered-id"] == last for g in r.xinfo_groups(stream))


def served_versions(client, loop) -> list:
    """The versions of the loop's registry that have served, oldest first."""
    models = client.call("GET", f"/v1/loops/{loop}/models")["models"]
    return sorted(m["version"] for m in models if m.get("served"))


# -- the gate: one loop per seed -----------------------------------------------------

@dataclass
class GateRun:
    """One seeded run: its environment, what it served, and what the gate did."""

    seed: int
    env: LogisticEnv
    t: int = 0
    promoted: dict | None = None      # the audit entry of the first promotion
    served: list = field(default_factory=list)  # (version, reward, expected) of every round
    promotions: list = field(default_factory=list)  # every promote entry, oldest first

    @property
    def loop(self) -> str:
        return f"gate-{self.seed}"

    def _served_by(self, keep) -> list:
        if self.promoted is None:
            return []
        v = self.promoted["version"]
        return [(r, e) for version, r, e in self.served if keep(version, v)]

    @property
    def post(self) -> list:
        """``(reward, expected)`` of the decisions the promoted version served."""
        return self._served_by(lambda version, v: version == v)

    @property
    def line(self) -> list:
        """The same for the versions the learner published from it."""
        return self._served_by(lambda version, v: version > v)

    @property
    def promoted_at(self) -> int | None:
        """The round the promoted version first served."""
        v = self.promoted["version"] if self.promoted else None
        return next((t for t, s in enumerate(self.served) if s[0] == v), None)


def play(url: str, runs: list, pre_max: int, post: int, check_every: int = 250) -> None:
    """Rank and reward each run's rounds in turn (one thread) until its promoted version
    served ``post`` decisions, or ``pre_max`` rounds went by without a promotion."""
    client = JsonClient(url, timeout=30)
    active = list(runs)
    while active:
        for run in list(active):
            for _ in range(check_every):
                _round(client, run)
            if run.promoted is None:
                run.promoted = first_promotion(client, run.loop)
            done = run.promoted is not None and len(run.post) + len(run.line) >= post
            if done or (run.promoted is None and run.t >= pre_max):
                active.remove(run)


def _round(client, run: GateRun) -> None:
    rnd = run.env.round(run.t)
    out = client.call("POST", f"/v1/loops/{run.loop}/rank",
                      {"context": rnd.context, "event_id": f"{run.loop}-{run.t}"})
    k = rnd.ids.index(out["chosen"])
    reward = rnd.reward(k)
    client.call("POST", f"/v1/loops/{run.loop}/events/{out['event_id']}/reward", {"value": reward})
    run.t += 1
    run.served.append((out["model"]["version"], reward, float(rnd.expected[k])))


def promotions(client, loop: str) -> list:
    """The loop's ``promote`` audit entries, oldest first."""
    entries = client.call("GET", f"/v1/loops/{loop}/audit?count=1000")["entries"]
    return [e for e in reversed(entries) if e["action"] == "promote"]


def first_promotion(client, loop: str) -> dict | None:
    found = promotions(client, loop)
    return found[0] if found else None


def promoted_interval(entry: dict, estimator: str = "dr") -> tuple:
    """``(value, low, high)`` the challenger was promoted on, from its audit entry (whose
    ``figures`` hold the challenger's ``figures`` and the ``gate`` it passed)."""
    fig = (entry.get("figures") or {}).get("figures") or {}
    est = fig.get(estimator) or {}
    return est.get("value"), est.get("low"), est.get("high")


def promoted_champion(entry: dict) -> tuple:
    """``(champion's value, events judged, ESS)`` the challenger was promoted on."""
    fig = (entry.get("figures") or {}).get("figures") or {}
    return (fig.get("champion") or {}).get("value"), fig.get("n"), fig.get("ess")


def challenger_of(entry: dict) -> str | None:
    return entry.get("challenger") or entry.get("name")


def truth(env: LogisticEnv, rounds: int = 4000) -> dict:
    """Exact values in ``env`` over its first ``rounds`` contexts: the champion once it
    knows the best action, uniform choices, and the best choice in every context."""
    expected = np.array([env.round(t).expected for t in range(rounds)])
    eps, fixed = CHAMPION["epsilon"], expected.mean(axis=0).max()
    return {"champion": (1 - eps) * fixed + eps * expected.mean(), "uniform": expected.mean(),
            "optimal": expected.max(axis=1).mean()}


# -- throughput with and without challengers -----------------------------------------

def throughput(url: str, bodies_path: str, tmp: str, loops: dict, rounds: int,
               seconds: int, connections: int = 8) -> dict:
    """Best of ``rounds`` alternating rank rounds per loop: ``{label: best req/s}`` plus
    each round's figure; ``loops`` maps a label to a loop name."""
    for loop in loops.values():  # warm-up
        drive(url, bodies_path, 2, connections, None, tmp, f"/v1/loops/{loop}/rank")
    runs = {label: [] for label in loops}
    for _ in range(rounds):
        for label, loop in loops.items():
            res = drive(url, bodies_path, seconds, connections, None, tmp, f"/v1/loops/{loop}/rank")
            runs[label].append(res["requests"] / res["seconds"])
    return {"best": {label: max(v) for label, v in runs.items()}, "rounds": runs,
            "generator": res["generator"]}


def write_bodies(tmp: str, bodies: list) -> str:
    path = os.path.join(tmp, "bodies.jsonl")
    with open(path, "w") as fh:
        fh.writelines(json.dumps(b) + "\n" for b in bodies)
    return path
