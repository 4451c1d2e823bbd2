"""Slate estimators: known answers, exact unbiasedness over every logged slate, marginals,
invalid inputs, interval coverage on simulated logs, and multi-slot logs in replay_eval."""
import json
import math
import statistics
import warnings

import numpy as np
import pytest

from bandits import make_policy
from bandits.dsjson_slots import dumps, slots_event, with_slot_labels
from bandits.slates import Slot, decide_slots
from replay import LOGGING, ReplayError, candidate_from_mapping
from replay.errors import EstimatorError
from replay.estimators import dr, ips
from replay.sources import open_log
from replay.slate_eval import MARGINALS_NA, evaluate_slates, format_slate_table, is_multi_slot
from replay.slate_marginals import enumerate_slates, slate_marginals, slate_value
from replay.slates import (iips, per_slot, pi_weights, pseudo_inverse, rips, slate_ci_coverage,
                           slate_ips)

Z95 = statistics.NormalDist().inv_cdf(0.975)


# -- hand-computed ------------------------------------------------------------------------
# 3 actions, 2 slots, both rounds log the slate (0, 1). Logger uniform: 1/3 then 1/2.
# Target: 0.6 on action 0 first, then 0.75 on action 1. w = (1.8, 1.5).
HAND = dict(rewards=np.array([[1.0, 1.0], [1.0, 0.0]]),
            propensities=np.array([[1 / 3, 0.5], [1 / 3, 0.5]]),
            target_probs=np.array([[0.6, 0.75], [0.6, 0.75]]), min_ess=0)


def test_slate_ips_and_rips_closed_form():
    terms = [1.8 * 1.5 * 2, 1.8 * 1.5 * 1]                    # W · Σ_j r_j
    est = slate_ips(**HAND)
    assert est.value == pytest.approx(4.05, abs=1e-12)
    assert est.high - est.value == pytest.approx(Z95 * statistics.stdev(terms) / math.sqrt(2), abs=1e-12)
    assert est.ess == pytest.approx(2.0)
    cascade = [1 * 1.8 + 1 * 1.8 * 1.5, 1 * 1.8 + 0.0]        # Σ_j r_j Π_{k≤j} w_k
    assert rips(**HAND).value == pytest.approx(statistics.mean(cascade), abs=1e-12)


def test_iips_closed_form():
    est = iips(rewards=HAND["rewards"], target_marginals=np.array([[0.6, 0.5], [0.6, 0.5]]),
               logging_marginals=np.array([[0.3, 0.25], [0.3, 0.25]]), min_ess=0)
    assert est.value == pytest.approx((2 * 1 + 2 * 1 + 2 * 1 + 0) / 2, abs=1e-12)


def test_one_slot_reduces_to_ips():
    r, mu, pi = np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.25, 0.25]), np.array([0.9, 0.1, 0.3])
    one = dict(rewards=r[:, None], propensities=mu[:, None], target_probs=pi[:, None], min_ess=0)
    base = ips(rewards=r, propensities=mu, target_probs=pi, min_ess=0)
    for fn in (slate_ips, rips):
        assert (fn(**one).value, fn(**one).low) == pytest.approx((base.value, base.low), abs=1e-12)


def test_per_slot_calls_the_single_slot_estimators():
    rng = np.random.default_rng(0)
    n = 50
    pmf = rng.dirichlet(np.ones(3), size=n)
    arrays = dict(rewards=rng.random(n), propensities=np.full(n, 1 / 3), actions=rng.integers(0, 3, n),
                  q_hat=rng.random((n, 3)), target_pmf=pmf)
    arrays["target_probs"] = pmf[np.arange(n), arrays["actions"]]
    out = per_slot([arrays, arrays])
    assert list(out[0]) == ["ips", "snips", "dr"]
    assert out[1]["dr"] == dr(**arrays)


# -- exact expectations over every logged slate -----------------------------------------
M, L = 4, 3


def table_policy(seed, temperature):
    """A conditional pmf that depends on the whole prefix (not only on what is left)."""
    rng = np.random.default_rng(seed)
    base, inter = rng.normal(size=(L, M)), rng.normal(size=(M, M))

    def pmf_fn(j, earlier):
        z = np.exp((base[j] + sum(inter[a] for a in earlier)) / temperature)
        z[list(earlier)] = 0.0
        return z / z.sum()
    return pmf_fn


LOGGER, TARGET = table_policy(1, 2.0), table_policy(2, 0.7)
PHI = np.random.default_rng(3).uniform(0.1, 0.9, size=(L, M))
REWARDS = {  # expected slot rewards of a slate
    "position": lambda s: PHI[np.arange(L), list(s)],                        # r_j = φ_j(a_j)
    "cascade": lambda s: PHI[np.arange(L), list(s)] * np.cumprod([1.0] + [1 - PHI[0, a] / 2 for a in s[:-1]]),
    "later": lambda s: PHI[np.arange(L), list(s)] * (1.0 + PHI[2, s[-1]]),    # depends on slot L−1
}
UNBIASED = {"position": {"slate_ips", "rips", "iips", "pseudo_inverse"},
            "cascade": {"slate_ips", "rips"}, "later": {"slate_ips"}}


def expectation(reward):
    """Each estimator's expectation: Σ over every logger slate of μ(s) × its one-round value."""
    slates, probs = enumerate_slates(LOGGER, L)
    mu_m, pi_m = slate_marginals(LOGGER, L, M), slate_marginals(TARGET, L, M)
    cols = np.arange(L)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one round: no interval
        for s, p in zip(slates, probs):
            one = dict(rewards=reward(tuple(s))[None], slates=s[None], min_ess=0,
                       propensities=np.array([[LOGGER(j, tuple(s[:j]))[s[j]] for j in cols]]),
                       target_probs=np.array([[TARGET(j, tuple(s[:j]))[s[j]] for j in cols]]),
                       target_marginals=pi_m.marginals[cols, s][None],
                       logging_marginals=mu_m.marginals[cols, s][None],
                       target_slot_marginals=pi_m.marginals, logging_second_moment=mu_m.second_moment)
            for name, fn in (("slate_ips", slate_ips), ("rips", rips), ("iips", iips),
                             ("pseudo_inverse", pseudo_inverse)):
                out[name] = out.get(name, 0.0) + p * fn(**one).value
    return out


@pytest.mark.parametrize("kind", sorted(REWARDS))
def test_estimators_are_unbiased_exactly_where_their_reward_assumption_holds(kind):
    truth = slate_value(TARGET, L, REWARDS[kind])
    means = expectation(REWARDS[kind])
    for name, mean in means.items():
        if name in UNBIASED[kind]:
            assert mean == pytest.approx(truth, abs=1e-12), (kind, name)
        else:  # the reward breaks the estimator's assumption: biased on this instance
            assert abs(mean - truth) > 1e-3, (kind, name, mean, truth)


# -- marginals ------------------------------------------------------------------------------
def test_marginals_are_consistent():
    out = slate_marginals(LOGGER, L, M)
    assert out.exact and out.slates == 24
    assert out.marginals.sum(axis=1) == pytest.approx(np.ones(L), abs=1e-12)       # one action per slot
    assert out.marginals.sum(axis=0).max() <= 1.0 + 1e-12                          # shown at most once
    g = out.second_moment
    assert np.diag(g) == pytest.approx(out.marginals.ravel(), abs=1e-12)
    assert g.sum(axis=1) == pytest.approx(L * out.marginals.ravel(), abs=1e-12)    # Γ·1 = L·q
    assert g == pytest.approx(g.T, abs=0)


def test_monte_carlo_marginals_within_their_stated_error():
    exact = slate_marginals(TARGET, L, M)
    approx = slate_marginals(TARGET, L, M, limit=10, samples=20000, seed=4)
    assert not approx.exact and approx.slates == 20000
    # each probability's standard error is at most 0.5/√20000 ≈ 0.0035: allow 5 of them
    assert np.abs(approx.marginals - exact.marginals).max() < 5 * 0.5 / math.sqrt(20000)
    assert np.abs(approx.second_moment - exact.second_moment).max() < 5 * 0.5 / math.sqrt(20000)


def test_enumeration_stops_above_its_limit():
    assert enumerate_slates(LOGGER, L, limit=23) is None
    assert len(enumerate_slates(LOGGER, L, limit=24)[1]) == 24


def test_pi_weights_of_the_logger_itself_are_one():
    out = slate_marginals(LOGGER, L, M)
    slates, _ = enumerate_slates(LOGGER, L)
    w = pi_weights(slates, out.marginals, out.second_moment)
    assert w == pytest.approx(np.ones(len(slates)), abs=1e-9)


# -- invalid inputs ---------------------------------------------------------------------------
GOOD = dict(rewards=np.ones((2, 2)), propensities=np.full((2, 2), 0.5), target_probs=np.full((2, 2), 0.5))


@pytest.mark.parametrize("fn, change, match", [
    (slate_ips, {"propensities": np.array([[0.5, 0.0], [0.5, 0.5]])}, r"propensities: must be in \(0, 1\], row 0 slot 1"),
    (rips, {"target_probs": np.array([[0.5, 1.5], [0.5, 0.5]])}, r"target_probs: must be in \[0, 1\]"),
    (slate_ips, {"rewards": np.ones(2)}, r"rewards: must be a non-empty \(n, L\) array"),
    (rips, {"propensities": np.full((3, 2), 0.5)}, "propensities: has shape"),
    (slate_ips, {"rewards": None}, "rewards: required"),
    (iips, {}, "logging_marginals: required"),
    (pseudo_inverse, {"slates": np.zeros((2, 2), dtype=int)}, "target_slot_marginals: must be"),
    (pseudo_inverse, {"slates": np.zeros((2, 2)), "target_slot_marginals": np.ones((2, 2))}, "slates: must be"),
])
def test_invalid_inputs_name_the_field(fn, change, match):
    with pytest.raises(EstimatorError, match=match):
        fn(**{**GOOD, **change})


def test_unknown_keyword_is_refused():
    with pytest.raises(TypeError, match="levl"):
        slate_ips(**GOOD, levl=0.9)


def test_a_pmf_that_reuses_a_shown_action_is_refused():
    with pytest.raises(EstimatorError, match="already shows"):
        slate_marginals(lambda j, earlier: np.array([1.0, 0.0]), 2, 2)


# -- coverage ---------------------------------------------------------------------------------
def test_intervals_cover_the_true_value_at_their_level():
    n_logs = 120
    out = slate_ci_coverage(n_logs=n_logs, rounds=2000, seed=0)
    # 120 logs: a 95% interval's coverage has sd √(.95·.05/120) = 0.02; accept down to −3 sd.
    # The mean estimate is within 4 standard errors (one log's sd ≈ width / (2·1.96)).
    for name, share in out["coverage"].items():
        assert 0.95 - 3 * 0.02 <= share <= 1.0, (name, share, out)
        tolerance = 4 * out["mean_width"][name] / (2 * Z95) / math.sqrt(n_logs)
        assert out["mean_value"][name] == pytest.approx(out["true_value"], abs=tolerance), name


# -- multi-slot logs ------------------------------------------------------------------------
ITEMS = [(f"item-{k}", {"item": {"k": float(k)}}) for k in range(4)]
SLOTS = [Slot("top", {"pos": {"i": 1}}), Slot("side", {"pos": {"i": 2}})]
LOGGER_SPEC = {"type": "epsilon_greedy", "epsilon": 0.6}


def write_slate_log(path, rounds=400, seed=0):
    """Multi-slot decisions of an untrained ε-greedy logger, rewarded by a click model."""
    policy, rng = make_policy(LOGGER_SPEC), np.random.default_rng(seed)
    with open(path, "wb") as fh:
        for t in range(rounds):
            ctx, event_id = {"u": {"x": float(t % 3)}}, f"e{t}"
            chosen = decide_slots(policy.decide, ctx, ITEMS, SLOTS, seed=seed, event_id=event_id)
            event = slots_event(loop="recs", event_id=event_id, epoch_s=1.7e9 + t, context=ctx,
                                actions=ITEMS, slates=chosen, policy="epsilon_greedy", version=1,
                                deferred=False)
            clicks = {sd.slot.id: (float(rng.random() < 0.2 + 0.15 * sd.action) * (1.0 - 0.3 * j), "reward")
                      for j, sd in enumerate(chosen)}
            fh.write(dumps(with_slot_labels(event, clicks if t % 10 else {"top": clicks["top"]})) + b"\n")
    return path


def by(result, policy, slot, est):
    return next(r for r in result.rows if (r["policy"], r["slot"], r["estimator"]) == (policy, slot, est))


def test_multi_slot_log_gets_per_slot_and_slate_rows(tmp_path):
    source = open_log(write_slate_log(str(tmp_path / "slates.json")))
    assert is_multi_slot(source)
    greedy = candidate_from_mapping({"name": "greedy", "policy": {"type": "epsilon_greedy", "epsilon": 0.1}})
    result = evaluate_slates(source, [greedy], train_fraction=0.5)
    assert source.report.unrewarded == 40 and result.slots == ["top", "side"]
    assert (result.train_rounds, result.rounds) == (180, 180)
    events = [json.loads(line) for line in open(tmp_path / "slates.json")]
    totals = [sum(-o["_label_cost"] for o in e["_outcomes"]) for e in events
              if all("_label_cost" in o for o in e["_outcomes"])]
    for est in ("slate_ips", "rips"):  # the logger's weights are 1: the mean logged slate reward
        assert by(result, LOGGING, "slate", est)["value"] == pytest.approx(np.mean(totals[180:]), abs=1e-12)
    assert by(result, "greedy", "slate", "rips")["value"] != by(result, LOGGING, "slate", "rips")["value"]
    assert by(result, "greedy", "slate", "iips")["note"] == MARGINALS_NA
    assert {(r["slot"], r["estimator"]) for r in result.rows if r["policy"] == "greedy"} == {
        ("top", "ips"), ("top", "snips"), ("top", "dr"), ("side", "ips"), ("side", "snips"),
        ("side", "dr"), ("slate", "slate_ips"), ("slate", "rips"), ("slate", "iips"),
        ("slate", "pseudo_inverse")}
    text = format_slate_table(result)
    assert MARGINALS_NA in text and "greedy" in text
    # the verdict rests on RIPS, the greedy candidate against the logger's slate value
    verdict = result.verdict()
    assert verdict.text.startswith("verdict: ") and verdict.text in text.splitlines()
    assert verdict.estimator == "rips" and verdict.policy == "greedy"
    rips = by(result, "greedy", "slate", "rips")   # a greedy slate is rare under this logger
    assert rips["ess"] < 30 and verdict.kind == "overlap too small"
    assert verdict.rounds == math.ceil(rips["n"] * 30 / rips["ess"] * 2)  # half the log trained it


def test_logging_policy_enables_iips_and_pseudo_inverse(tmp_path):
    source = open_log(write_slate_log(str(tmp_path / "slates.json"), rounds=200))
    twin = candidate_from_mapping({"name": "same", "policy": LOGGER_SPEC})
    result = evaluate_slates(source, [twin], logging_policy=make_policy(LOGGER_SPEC))
    mean = by(result, LOGGING, "slate", "slate_ips")["value"]
    for est in ("slate_ips", "rips", "iips", "pseudo_inverse"):  # target = logger: weights 1
        assert by(result, "same", "slate", est)["value"] == pytest.approx(mean, abs=1e-9)


def test_replay_candidates_are_refused_on_multi_slot_logs(tmp_path):
    source = open_log(write_slate_log(str(tmp_path / "slates.json"), rounds=20))
    online = candidate_from_mapping({"name": "online", "policy": LOGGER_SPEC, "learn": "replay"})
    with pytest.raises(ReplayError, match="frozen candidates only"):
        evaluate_slates(source, [online])


def test_replay_eval_prints_the_multi_slot_report(tmp_path, capsys):
    from replay_eval import main  # scripts/ is on pytest's pythonpath

    log = write_slate_log(str(tmp_path / "slates.json"), rounds=200)
    cand = tmp_path / "greedy.toml"
    cand.write_text('name = "greedy"\npolicy = { type = "epsilon_greedy", epsilon = 0.1 }\n')
    out_json = tmp_path / "r.json"
    assert main(["--log", log, "--policy", str(cand), "--json", str(out_json),
                 "--plot", str(tmp_path / "r.png")]) == 0
    text = capsys.readouterr().out
    assert "slate_ips" in text and "rips" in text and MARGINALS_NA in text
    report = json.loads(out_json.read_text())
    assert report["kind"] == "multi-slot"
    assert report["verdict"]["text"].startswith("verdict: ") and report["verdict"]["text"] in text
