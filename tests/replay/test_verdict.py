"""The verdict line: known answers on hand-built rows, and one simulated log per rule.

Simulated logs use a fresh ``LinearEnvironment(5 actions, seed 3)`` and fixed-pmf
policies, so every count below follows from the seeds: in ``sparse_log`` (600 rounds,
seed 4, a logger giving actions 1-4 probability 0.002 each) action 4 was logged exactly
once.
"""
import doctest
import json
import math
import re

import numpy as np
import pytest

import replay.estimators
import replay.verdict
from bandits import Decision
from bandits.environments import LinearStream as LinearEnvironment
from replay import LOGGING, Candidate, evaluate, open_log
from replay.report import format_table, write_json
from replay.simulated import simulate_log, write_dsjson
from replay.verdict import conclude

import replay_eval

SPARSE = [0.992, 0.002, 0.002, 0.002, 0.002]   # ε-greedy with ε = 0.01 over K = 5
ALWAYS_4 = [0.0, 0.0, 0.0, 0.0, 1.0]


class Fixed:
    """A policy with one pmf for every context (deterministic when it is one-hot)."""

    def __init__(self, pmf):
        self.pmf = np.asarray(pmf, dtype=np.float64)

    def decide(self, context, actions):
        ids = tuple(a["id"] if isinstance(a, dict) else str(a) for a in actions)
        return Decision(ids, self.pmf.copy(), self.pmf.copy(), "fixed")

    def learn(self, batch):
        pass


def simulated(tmp_path_factory, name, logger_pmf, rounds, seed):
    env = LinearEnvironment(n_actions=5, n_features=6, seed=3)
    path = str(tmp_path_factory.mktemp("logs") / f"{name}.json")
    write_dsjson(simulate_log(env, Fixed(logger_pmf), rounds, seed=seed, learn=False), path)
    return path, env


@pytest.fixture(scope="module")
def sparse_log(tmp_path_factory):
    path, _ = simulated(tmp_path_factory, "sparse", SPARSE, 600, seed=4)
    chosen = np.concatenate([r.chosen for r in open_log(path).chunks(1000, None)])
    assert (chosen == 4).sum() == 1  # the premise: one logged round matches ALWAYS_4
    return path


@pytest.fixture(scope="module")
def uniform_log(tmp_path_factory):
    return simulated(tmp_path_factory, "uniform", [0.2] * 5, 2000, seed=5)


def row(result, policy, estimator):
    return next(r for r in result.rows if (r["policy"], r["estimator"]) == (policy, estimator))


def half(r):
    return (r["high"] - r["low"]) / 2.0


# -- one simulated log per rule ----------------------------------------------------------
def test_replay_on_one_accepted_round_has_no_interval_and_says_overlap_too_small(sparse_log, tmp_path):
    result = evaluate(open_log(sparse_log), [Candidate("online-a4", Fixed(ALWAYS_4), "replay")])
    rep = row(result, "online-a4", "replay")
    assert (rep["ess"], rep["n"]) == (1.0, 600) and math.isfinite(rep["value"])
    assert math.isnan(rep["low"]) and math.isnan(rep["high"])
    assert rep["warnings"] == ["replay: 1 accepted round is under 30: too few to size an "
                               "interval (shown as n/a)"]
    verdict = result.verdict()
    # ε ≥ K·30/n = 5·30/600; rounds n·30/ESS = 600·30/1
    assert (verdict.kind, verdict.epsilon, verdict.rounds) == ("overlap too small", 0.25, 18000)
    assert verdict.text == (
        "verdict: overlap too small: candidate online-a4 takes actions the log rarely explored "
        "(REPLAY: 1 accepted round, under 30; logged propensity as low as 0.002); next: log "
        "with ε ≥ 0.25 or evaluate on ~18,000 rewarded rounds")
    table = format_table(result.rows, verdict).splitlines()
    assert re.match(r"online-a4 +replay +\d\.\d{4} +n/a +n/a +1\.0 +600 !$", table[-4])
    assert table[-1] == verdict.text
    write_json(result.to_dict(), str(tmp_path / "r.json"))
    saved = json.load(open(tmp_path / "r.json"))
    assert [(r["low"], r["high"]) for r in saved["rows"] if r["policy"] == "online-a4"] == [(None, None)]
    assert saved["verdict"]["kind"] == "overlap too small"


def test_a_frozen_candidate_matching_one_round_has_no_weighted_interval(sparse_log):
    result = evaluate(open_log(sparse_log), [Candidate("always-a4", Fixed(ALWAYS_4))])
    for est in ("ips", "snips", "dr", "sndr"):
        r = row(result, "always-a4", est)
        assert r["ess"] == pytest.approx(1.0) and math.isnan(r["low"]) and math.isnan(r["high"])
        assert any("under 30: too few" in w for w in r["warnings"])
    assert math.isfinite(row(result, "always-a4", "dm")["low"])  # ESS n: DM keeps its interval
    assert result.overlap == {"always-a4": {"min_propensity": 0.002, "actions": 5}}
    verdict = result.verdict()
    assert (verdict.kind, verdict.estimator, verdict.epsilon, verdict.rounds) == \
        ("overlap too small", "dr", 0.25, 18000)
    assert "(DR: ESS 1.0, under 30; logged propensity as low as 0.002)" in verdict.text


def test_a_clearly_better_candidate_beats_the_logger(uniform_log):
    path, env = uniform_log
    best, worst = int(np.argmax(env.bias)), int(np.argmin(env.bias))
    result = evaluate(open_log(path), [Candidate("best", Fixed(np.eye(5)[best])),
                                       Candidate("worst", Fixed(np.eye(5)[worst]))])
    verdict = result.verdict()
    cand, base = row(result, "best", "dr"), row(result, LOGGING, "dr")
    d = cand["value"] - base["value"]
    spread = math.hypot(half(cand), half(base))
    assert (verdict.kind, verdict.policy, verdict.estimator) == ("beats", "best", "dr")
    assert (verdict.difference, verdict.low, verdict.high) == (d, d - spread, d + spread)
    assert verdict.low > 0
    # E[x] = 0, so the true difference is bias[best] − mean(bias)
    assert verdict.low <= env.bias[best] - env.bias.mean() <= verdict.high
    assert re.fullmatch(r"verdict: candidate best beats the logging policy by \+0\.\d{4} "
                        r"\[0\.\d{4}, 0\.\d{4}\] \(DR\); next: deploy it and check that its "
                        r"live reward lands in its interval", verdict.text)
    worse = conclude([r for r in result.rows if r["policy"] != "best"])
    assert worse.kind == "worse" and worse.high < 0
    assert re.fullmatch(r"verdict: candidate worst is worse than the logging policy by -0\.\d{4} "
                        r"\[-0\.\d{4}, -0\.\d{4}\] \(DR\); next: keep the logging policy", worse.text)


def test_a_near_tie_gives_no_conclusion_with_the_rounds_to_separate(uniform_log, tmp_path_factory):
    path, _ = uniform_log
    tilted = [0.3, 0.2, 0.2, 0.2, 0.1]
    result = evaluate(open_log(path), [Candidate("tilted", Fixed(tilted))])
    cand, base = row(result, "tilted", "dr"), row(result, LOGGING, "dr")
    d = cand["value"] - base["value"]
    needed = 2000 * ((half(cand) + half(base)) / abs(d)) ** 2
    verdict = result.verdict()
    assert verdict.kind == "no conclusion" and verdict.rounds == math.ceil(needed - 2000)
    assert verdict.text == (f"verdict: no conclusion: candidate tilted differs from the logging "
                            f"policy by {d:+.4f} and the intervals overlap (DR); next: collect "
                            f"~{verdict.rounds:,} more rewarded rounds")
    # the rule's premise: half-widths shrink as 1/√n (4× the rounds, half the width, ±15%)
    bigger, _ = simulated(tmp_path_factory, "uniform4x", [0.2] * 5, 8000, seed=6)
    big = evaluate(open_log(bigger), [Candidate("tilted", Fixed(tilted))])
    for policy in ("tilted", LOGGING):
        assert half(row(big, policy, "dr")) / half(row(result, policy, "dr")) == pytest.approx(0.5, rel=0.15)


def test_the_script_ends_with_the_verdict(sparse_log, tmp_path, capsys):
    (tmp_path / "online.toml").write_text(
        'name = "eg-online"\nlearn = "replay"\npolicy = { type = "epsilon_greedy", epsilon = 0.05 }\n')
    out_json = str(tmp_path / "r.json")
    code = replay_eval.main(["--log", sparse_log, "--policy", str(tmp_path / "online.toml"),
                             "--json", out_json, "--plot", str(tmp_path / "r.png")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert re.match(r"eg-online +replay +(\S+) +n/a +n/a +\d\.0 +600 !$", lines[-4])
    assert re.fullmatch(r"verdict: overlap too small: candidate eg-online takes actions the log "
                        r"rarely explored \(REPLAY: \d accepted rounds?, under 30; logged "
                        r"propensity as low as 0\.002\); next: log with ε ≥ 0\.25 or evaluate "
                        r"on ~[\d,]+ rewarded rounds", lines[-1])
    saved = json.load(open(out_json))
    assert saved["verdict"]["text"] == lines[-1]


# -- known answers on hand-built rows ------------------------------------------------------
def mk(policy, estimator, value, low, high, ess, n=1000):
    return dict(policy=policy, estimator=estimator, value=value, low=low, high=high, ess=ess,
                n=n, warnings=[])


NAN = math.nan


def test_too_few_rounds_counts_the_missing_ones():
    rows = [mk(LOGGING, "dr", 0.5, NAN, NAN, 12.0, 12), mk("c", "dr", 0.6, NAN, NAN, 3.0, 12)]
    assert conclude(rows).text == ("verdict: too few rounds: 12 evaluated, under 30; next: "
                                   "collect ≥ 18 more rewarded rounds")
    assert conclude(rows, scale=2.0).rounds == 36  # half the log trains the candidates


def test_logging_only():
    assert conclude([mk(LOGGING, "ips", 0.7018, 0.6602, 0.7434, 3000.0)]).text == (
        "verdict: the logging policy's value is 0.7018 [0.6602, 0.7434] (IPS); next: evaluate "
        "a candidate against it")


def test_overlap_advice_from_the_data():
    base = mk(LOGGING, "dr", 0.5, 0.45, 0.55, 1000.0)
    none = [base, mk("c", "dr", 0.9, NAN, NAN, 0.0)]
    verdict = conclude(none, {"c": {"min_propensity": 0.004, "actions": 4}})
    # no match: 30/μ_min = 7,500 rounds; ε ≥ 4·30/1000 = 0.12
    assert (verdict.rounds, verdict.epsilon) == (7500, 0.12)
    assert verdict.text.endswith("(DR: ESS 0.0, under 30; logged propensity as low as 0.004); "
                                 "next: log with ε ≥ 0.12 or evaluate on ~7,500 rewarded rounds")
    small = [mk(LOGGING, "dr", 0.5, 0.45, 0.55, 100.0, 100), mk("c", "dr", 0.9, NAN, NAN, 7.0, 100)]
    verdict = conclude(small, {"c": {"min_propensity": 0.01, "actions": 5}})
    # 5·30/100 = 1.5 > 1: no ε helps at 100 rounds; ⌈100·30/7⌉ = 429
    assert verdict.epsilon is None and verdict.text.endswith("next: evaluate on ~429 rewarded rounds")
    assert conclude(small).text.endswith("(DR: ESS 7.0, under 30); next: evaluate on ~429 rewarded rounds")


def test_no_conclusion_rounds_and_the_ranking_of_candidates():
    base = mk(LOGGING, "dr", 0.50, 0.48, 0.52, 1000.0)           # h_log = 0.02
    close = mk("close", "dr", 0.53, 0.50, 0.56, 500.0)            # h = 0.03, d = 0.03
    verdict = conclude([base, close])
    # 1000·((0.03 + 0.02)/0.03)² − 1000 = 1777.8 more
    assert (verdict.kind, verdict.rounds) == ("no conclusion", 1778)
    assert conclude([base, close], scale=2.0).rounds == 3556
    equal = conclude([base, mk("same", "dr", 0.50, 0.47, 0.53, 500.0)])
    assert equal.kind == "no conclusion" and equal.rounds is None and "estimated equal" in equal.text
    low_bound = [base, close, mk("a", "dr", 0.60, 0.57, 0.63, 400.0),
                 mk("b", "dr", 0.70, 0.60, 0.80, 50.0), mk("bad", "dr", 0.1, 0.05, 0.15, 900.0)]
    # a: d = 0.10 ± 0.036 → 0.064; b: d = 0.20 ± 0.102 → 0.098: b's lower bound is larger
    assert conclude(low_bound).policy == "b"
    assert conclude([base, mk("bad", "dr", 0.1, 0.05, 0.15, 900.0), close]).policy == "close"


def test_replay_candidates_are_judged_against_the_loggers_deciding_row():
    rows = [mk(LOGGING, "ips", 0.50, 0.40, 0.60, 1000.0), mk(LOGGING, "snips", 0.50, 0.48, 0.52, 1000.0),
            mk("learner", "replay", 0.60, 0.55, 0.65, 300.0)]
    verdict = conclude(rows)
    assert (verdict.kind, verdict.estimator) == ("beats", "replay")
    assert verdict.text.startswith("verdict: candidate learner beats the logging policy by "
                                   "+0.1000 [0.0461, 0.1539] (REPLAY)")


def test_a_zero_width_interval_is_undefined_not_certain():
    rows = [mk(LOGGING, "dr", 0.0, NAN, NAN, 1000.0), mk("c", "dr", 0.2, 0.1, 0.3, 500.0)]
    verdict = conclude(rows)
    assert verdict.kind == "undefined"
    assert verdict.text.startswith("verdict: no conclusion: the logging policy has a zero-width DR")


@pytest.mark.filterwarnings("ignore::replay.errors.ReplayWarning")
@pytest.mark.parametrize("module", [replay.verdict, replay.estimators])
def test_doctests(module):
    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
