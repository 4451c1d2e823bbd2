"""Run a policy on a simulated decision loop: decide, sample, reward, learn.

Uses the seeded linear-reward environment of :mod:`bandits.simulation` and prints
the policy's average reward beside uniform random and the best action in hindsight.

Usage: python scripts/simulate.py [--policy '{"type": "linucb", "alpha": 1.0}']
                                  [--rounds N] [--actions K] [--seed S]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from bandits import BanditError, make_policy
from bandits.simulation import LinearEnvironment, run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append", default=None,
                        help="policy spec as JSON (repeatable); default: every built-in policy")
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--actions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        specs = [json.loads(p) for p in args.policy] if args.policy else [
            {"type": "epsilon_greedy"}, {"type": "linucb"}, {"type": "lints"}, {"type": "vw"}]
    except json.JSONDecodeError as exc:
        parser.error(f"--policy: not valid JSON: {exc}")
    print(f"{'policy':<40}{'reward':>9}{'uniform':>9}{'best':>9}{'us/round':>10}")
    for spec in specs:
        try:
            policy = make_policy(spec)
        except BanditError as exc:
            parser.error(f"--policy: {exc}")
        env = LinearEnvironment(n_actions=args.actions, seed=args.seed)
        start = time.perf_counter()
        res = run(policy, env, args.rounds, seed=args.seed)
        us = (time.perf_counter() - start) / args.rounds * 1e6
        print(f"{json.dumps(spec):<40}{res['policy_reward']:>9.3f}{res['uniform_reward']:>9.3f}"
              f"{res['best_reward']:>9.3f}{us:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
