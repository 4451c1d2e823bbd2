#!/usr/bin/env python3
"""The model lifecycle through the real service: deploys, the promotion gate, challengers' cost.

The production topology (gunicorn with ``--workers`` workers, a ``cbserve learner``
process, a redis-server) serves, in one configuration:

- ``deploy``: a LinUCB loop. Once the learner published two versions, ``--deploys``
  deploys alternate between them (``learn`` false, then true) while two clients rank
  on it. After each, new connections ask ``GET /v1/loops/deploy`` until every worker
  (all of them seen) reports the deployed version: ``deploy_p50_s``, ``deploy_p99_s``
  (target <= 1 s). Every rank answered 200 is then looked up in the decision log:
  ``lost`` (target 0).
- ``gate-<seed>``, one loop per ``--seeds`` run, each on its own seeded
  :class:`~bandits.environments.LogisticEnv` (4 actions, Bernoulli clicks): the
  champion is ε-greedy (ε = 0.2) whose model lets no context feature change its
  choice; the challengers are LinUCB using the context (truly better, by 0.15-0.3
  in these environments) and uniform choices (truly worse), promotion ``auto``.
  Each loop is ranked and rewarded until a promoted version and the versions the
  learner publishes from it served ``--post`` decisions: ``gate_correct_better``
  (the better one promoted; target >= 18/20), ``gate_correct_worse`` (the worse one
  never; target 20/20), ``ci_covered`` (the mean reward of the decisions the
  promoted version served, about ``publish_events`` of them, lies in the interval it
  was promoted on; target >= 18/20).
- ``plain`` and ``challenged``: the same LinUCB loop on bench_service's rank bodies,
  the second with the two challengers. Best of ``--rounds`` alternating rounds each
  (wrk, or a Python generator): ``throughput_ratio_challengers`` (about 1 expected:
  challengers run in the learner).

Usage: python scripts/lifecycle.py [--quick]. The last line is one JSON object. Exit 1
if an acknowledged rank was lost, a rank failed, or a deploy was refused or not served
by every worker within 10 s (the statistical figures are for the reader to judge).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import threading
import time

import lifecycle_steps as steps
from bandits.environments import LogisticEnv
from service.sim.traffic import JsonClient
from service.testing.procs import production
from service.testing.workload import workload

TP_KEYS = {"policy": {"type": "linucb", "alpha": 1.0}, "reward_wait": "1s"}


def config(seeds: list, window: int, interval: str, min_ess: float = 100) -> str:
    parts = [steps.SERVICE,
             steps.loop_toml("deploy", {"policy": {"type": "linucb", "alpha": 1.0},
                                        "reward_wait": "10m"}),
             steps.loop_toml("plain", TP_KEYS),
             steps.loop_toml("challenged", TP_KEYS, steps.CHALLENGERS)]
    return "\n".join(parts + [steps.gate_loop(s, window, interval, min_ess) for s in seeds])


def main(argv=None) -> int:
    try:
        return run(argv)
    except RuntimeError as exc:  # a service that did not start, a learner that never published
        print(f"lifecycle: {exc}", file=sys.stderr)
        return 1


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smaller run: 4 seeds, 5 deploys, 1 s throughput rounds")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seeds", type=int, help="gate runs (default 20; quick 4)")
    parser.add_argument("--deploys", type=int, help="deploys (default 20; quick 5)")
    parser.add_argument("--window", type=int, default=50000,
                        help="evaluation.window: the last N joined events judged")
    parser.add_argument("--min-ess", type=float, default=100,
                        help="promotion.min_ess: the challenger's effective sample size needed")
    parser.add_argument("--pre-max", type=int, default=6000,
                        help="rounds a gate run waits for a promotion")
    parser.add_argument("--post", type=int, help="decisions of the promoted version and its "
                                                  "successors (default 1100; quick 600)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per loop")
    parser.add_argument("--seconds", type=int, help="length of a throughput round (default 5)")
    parser.add_argument("--threads", type=int, default=5, help="client threads of the gate runs")
    args = parser.parse_args(argv)
    q = args.quick
    n_seeds = args.seeds or (4 if q else 20)
    n_deploys = args.deploys or (5 if q else 20)
    post, seconds = args.post or (600 if q else 1100), args.seconds or (1 if q else 5)
    seeds = list(range(n_seeds))
    bodies = [{"context": c, "actions": a} for c, a, _, _ in workload(200, seed=7)]
    began = time.monotonic()
    with production(config(seeds, args.window, "1s", args.min_ess), args.workers) as deployed:
        api, tmp = deployed.api, deployed.tmp
        pids = set(api.worker_pids())
        dep = steps.deploys(api.url, deployed.redis_url, "deploy", bodies, n_deploys, pids)
        print(f"{time.monotonic() - began:6.0f} s  {len(dep['seconds'])} deploys done")
        tp = steps.throughput(api.url, steps.write_bodies(tmp, bodies), tmp,
                              {"none": "plain", "two": "challenged"}, args.rounds, seconds)
        print(f"{time.monotonic() - began:6.0f} s  throughput rounds done")
        runs = [steps.GateRun(s, LogisticEnv(seed=s, **steps.ENV)) for s in seeds]
        threads = [threading.Thread(target=steps.play, args=(api.url, runs[i::args.threads],
                                                              args.pre_max, post))
                   for i in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client = JsonClient(api.url)
        for run in runs:
            run.promotions = steps.promotions(client, run.loop)
        print(f"{time.monotonic() - began:6.0f} s  gate runs done")
    figures = _figures(dep, tp, runs, pids, time.monotonic() - began)
    _table(figures, runs, args)
    print(json.dumps(figures))
    broken = (figures["lost"] or figures["rank_errors"] or figures["deploys_unseen"]
              or figures["deploys_refused"])
    return 1 if broken else 0


def pct(values, q):
    """The q-quantile of ``values`` (nearest rank: with 20 values, p99 is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else None


def _figures(dep, tp, runs, pids, elapsed) -> dict:
    seen = [(ans, after) for ans, after in dep["seconds"] if after is not None]
    after, total = [a for _, a in seen], [ans + a for ans, a in seen]

    def r3(x):
        return None if x is None else round(x, 3)
    better = sum(any(steps.challenger_of(e) == steps.BETTER for e in r.promotions) for r in runs)
    # how much better the promoted line truly did than the champion would have
    gaps = [statistics.fmean(e for _, e in r.post + r.line) - steps.truth(r.env)["champion"]
            for r in runs if r.post + r.line]
    worse = sum(not any(steps.challenger_of(e) == steps.WORSE for e in r.promotions) for r in runs)
    return {
        "deploy_p99_s": r3(pct(after, 0.99)), "deploy_p50_s": r3(pct(after, 0.5)),
        "deploy_with_request_p99_s": r3(pct(total, 0.99)),
        "deploy_with_request_p50_s": r3(pct(total, 0.5)),
        "deploy_request_p50_s": r3(pct([ans for ans, _ in dep["seconds"]], 0.5)),
        "deploys": len(dep["seconds"]), "deploys_unseen": len(dep["seconds"]) - len(seen),
        "deploys_refused": len(dep["refused"]), "workers_seen": len(pids),
        "lost": dep["lost"], "acknowledged": dep["acknowledged"], "rank_errors": dep["rank_errors"],
        "gate_correct_better": better, "gate_correct_worse": worse,
        "ci_covered": sum(_covered(r) is True for r in runs), "gate_runs": len(runs),
        "promoted_at_round": [r.promoted_at for r in runs],
        "better_gap_min": r3(min(gaps)) if gaps else None,
        "throughput_ratio_challengers": round(tp["best"]["two"] / tp["best"]["none"], 3),
        "rank_rps_no_challengers": round(tp["best"]["none"], 1),
        "rank_rps_two_challengers": round(tp["best"]["two"], 1),
        "throughput_rounds": {k: [round(x, 1) for x in v] for k, v in tp["rounds"].items()},
        "generator": tp["generator"], "seconds": round(elapsed, 1)}


def _covered(run) -> bool | None:
    """Whether the mean reward of the decisions the promoted version served lies in the
    interval it was promoted on."""
    if run.promoted is None or not run.post:
        return None
    _, low, high = steps.promoted_interval(run.promoted)
    mean = statistics.fmean(r for r, _ in run.post)
    return None if low is None else low <= mean <= high


def _table(f, runs, args) -> None:
    print(f"\n{f['workers_seen']} gunicorn workers + learner process, {f['seconds']} s in all")
    print("gate runs: promoted on = the challenger's DR value [95% interval] on n events "
          "(ESS), against the champion's\non-policy value; after = mean reward (and mean "
          "expected reward) of the n decisions the promoted version\nserved, line = of those its "
          "successors served; truth = exact values of the champion (knowing the best\naction) "
          "and of the best choice in each context")
    print(f"{'seed':>4} {'promoted':>9} {'at round':>9} {'n / ESS':>11} {'promoted on (dr)':>22} "
          f"{'champ':>6} {'after':>6} {'(exp.)':>7} {'n':>5} {'line':>6} {'n':>5} "
          f"{'truth: champ':>13} {'optimal':>8}")
    for run in runs:
        truth = steps.truth(run.env)
        name = steps.challenger_of(run.promoted) if run.promoted else "-"
        value, low, high = steps.promoted_interval(run.promoted) if run.promoted else (None,) * 3
        shown = f"{value:.3f} [{low:.3f}, {high:.3f}]" if low is not None else "-"
        champ, n, ess = steps.promoted_champion(run.promoted) if run.promoted else (None,) * 3
        mean = f"{statistics.fmean(r for r, _ in run.post):.3f}" if run.post else "-"
        exp = f"{statistics.fmean(e for _, e in run.post):.3f}" if run.post else "-"
        line = f"{statistics.fmean(r for r, _ in run.line):.3f}" if run.line else "-"
        at = run.promoted_at if run.promoted_at is not None else "-"
        judged = f"{n} / {ess:.0f}" if n is not None and ess is not None else "-"
        print(f"{run.seed:>4} {name:>9} {at!s:>9} {judged:>11} {shown:>22} "
              f"{'-' if champ is None else format(champ, '.3f'):>6} {mean:>6} {exp:>7} "
              f"{len(run.post):>5} {line:>6} {len(run.line):>5} "
              f"{truth['champion']:>13.3f} {truth['optimal']:>8.3f}")
    rows = [("deploy answered -> every worker serves it, p50 / p99 (s)",
             f"{f['deploy_p50_s']} / {f['deploy_p99_s']}", "p99 target <= 1"),
            ("  from sending the deploy (checks included), p50 / p99",
             f"{f['deploy_with_request_p50_s']} / {f['deploy_with_request_p99_s']}", ""),
            ("deploys (not seen on every worker in 10 s; refused)",
             f"{f['deploys']} ({f['deploys_unseen']}; {f['deploys_refused']})", ""),
            ("ranks acknowledged during the deploys / lost", f"{f['acknowledged']} / {f['lost']}",
             "lost target 0"),
            ("gate_correct (better promoted, worse never)",
             f"{f['gate_correct_better']}/{f['gate_runs']}, "
             f"{f['gate_correct_worse']}/{f['gate_runs']}",
             ">= 18, 20 of 20"),
            ("ci_covered (promoted version's mean in its interval)",
             f"{f['ci_covered']}/{f['gate_runs']}", ">= 18 of 20"),
            ("promoted line's true lead on the champion, least run",
             f["better_gap_min"], "expected reward"),
            ("rank req/s, no challengers / two challengers",
             f"{f['rank_rps_no_challengers']:.0f} / {f['rank_rps_two_challengers']:.0f}",
             f"best of {args.rounds} ({f['generator']})"),
            ("throughput_ratio_challengers", f["throughput_ratio_challengers"], "about 1")]
    for label, value, note in rows:
        print(f"{label:<58}{value!s:>18}  {note}")


if __name__ == "__main__":
    sys.exit(main())
