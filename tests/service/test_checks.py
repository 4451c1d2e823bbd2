"""Pre-deployment checks (service.checks): real snapshots of every built-in policy type
pass on logged decisions; a corrupt or foreign snapshot, a NaN pmf, a broken floor, a
fixed-action mismatch and a latency budget of 0 each fail, and the first failure is named."""
import json

import numpy as np
import pytest

from bandits import Policy, dsjson, make_policy
from bandits.offline.onnx_mlp import mlp_onnx
from replay.simulated import simulate_log
from service.checks import CHECKS, exploration_floor, first_failure, run_checks
from service.config import parse_config
from service.store import LoopLog

HERO = ["hero-a", "hero-b", "hero-c", "hero-d"]


class NaNPolicy(Policy):
    """A plugin whose pmf is NaN (loaded by the checks as ``tests.service.test_checks:NaNPolicy``)."""

    name = "nan"

    def __init__(self):
        pass

    def _decide(self, context, pairs):
        return np.zeros(len(pairs)), np.full(len(pairs), np.nan)

    def _learn(self, batch):
        pass

    def _get_state(self):
        return {}, {}

    def _set_state(self, state, arrays):
        pass


def loop_of(policy, actions=None, **extra):
    spec = {"policy": policy, "featurizer": {"context_dim": 8, "action_dim": 8, "interaction_dim": 0}}
    if actions:
        spec["actions"] = actions
    return parse_config({"loops": {"l": {**spec, **extra}}}).loops["l"]


def fixed_log(ids, n=30, context=None):
    """Decisions over the fixed ``ids`` as the service logs them (uniform pmf)."""
    k = len(ids)
    return [dsjson.loads(dsjson.dumps(dsjson.decision_event(
        loop="l", event_id=f"e{t}", epoch_s=1.7e9 + t,
        context=context(t) if context else {"user": {"x": float(t % 3)}},
        actions=[(aid, {}) for aid in ids], order=list(range(k)), pmf=[1.0 / k] * k,
        policy="epsilon_greedy", version=1, deferred=False))) for t in range(n)]


def trained(loop, events):
    """The loop's policy after learning the labelled ``events`` (a real candidate)."""
    policy = loop.new_policy()
    policy.learn([dsjson.to_feedback(e, -e["_label_cost"]) for e in events if "_label_cost" in e])
    return policy.to_bytes()


def labelled(events, reward=1.0):
    return [dsjson.with_label(e, reward) for e in events]


@pytest.fixture(scope="module")
def recs_log(env):
    return simulate_log(env, make_policy({"type": "epsilon_greedy", "epsilon": 0.3}), 60, seed=2)


SHARED = [{"type": "epsilon_greedy", "epsilon": 0.2, "decay": 0.1, "min_epsilon": 0.05},
          {"type": "linucb", "alpha": 0.5}, {"type": "lints", "v": 0.5},
          {"type": "vw", "args": "--epsilon 0.1"}, {"type": "vw", "args": "--squarecb"}]


@pytest.mark.parametrize("spec", SHARED, ids=lambda s: "-".join(map(str, s.values())))
def test_every_builtin_type_passes_on_per_request_candidates(spec, recs_log):
    loop = loop_of(spec)
    report = run_checks(trained(loop, recs_log), loop, recs_log, latency_budget_ms=1000.0)
    assert report.passed, report.to_dict()
    assert [c.name for c in report.checks] == list(CHECKS)
    assert report.checks[1].figures["decisions"] == 60
    assert first_failure(report.checks) is None and report.first_failure() is None
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize("spec", [{"type": "epsilon_greedy", "epsilon": 0.2, "model": "disjoint"},
                                  {"type": "linucb", "model": "disjoint"}])
def test_fixed_action_loops_pass_with_the_whole_fixed_list_decided_too(spec):
    loop = loop_of(spec, HERO)
    log = fixed_log(HERO[:3])  # an `exclude` in a request: a subset of the loop's ids
    report = run_checks(trained(loop, labelled(log)), loop, log, latency_budget_ms=1000.0)
    assert report.passed, report.to_dict()
    assert report.checks[3].figures == {"fixed": True, "decisions": 31, "mismatched": 0}


def test_a_qnetwork_passes_on_a_sequential_loop(tmp_path):
    path = tmp_path / "q.onnx"
    path.write_bytes(mlp_onnx([(np.ones((5, 3)), np.zeros(3))]))
    loop = loop_of({"type": "qnetwork", "model": str(path),
                    "state": {"features": ["user.x"], "history": 1, "step": False}},
                   ["a", "b", "c"], session={"ttl": 60})
    log = fixed_log(["a", "b", "c"], context=lambda t: {
        "user": {"x": float(t)}, "_session": {"step": 0, "history": []}})
    report = run_checks(loop.new_policy().to_bytes(), loop, log, latency_budget_ms=1000.0)
    assert report.passed, report.to_dict()
    assert report.checks[2].figures["rule"] == "p >= 0.05/K"


def test_a_malformed_logged_entry_is_counted_not_held_against_the_candidate(recs_log):
    loop = loop_of({"type": "linucb"})
    log = recs_log[:5] + [{"EventId": "bad", "c": {"_multi": 3}}, {"c": 5}]
    report = run_checks(trained(loop, recs_log), loop, log, latency_budget_ms=1000.0)
    assert report.passed and report.checks[1].figures["undecodable"] == 2
    assert report.checks[1].figures["decisions"] == 5


def test_with_no_logged_decision_a_fixed_loop_decides_on_its_actions():
    loop = loop_of({"type": "epsilon_greedy", "model": "disjoint"}, HERO)
    report = run_checks(loop.new_policy().to_bytes(), loop, [], latency_budget_ms=1000.0)
    assert report.passed and report.checks[1].figures["decisions"] == 1


@pytest.mark.parametrize("blob, match", [
    (b"not a snapshot", "not a cbserve policy snapshot"),
    (make_policy({"type": "linucb"}).to_bytes(), "holds a 'linucb' policy, not 'epsilon_greedy'"),
], ids=["corrupt", "another-class"])
def test_a_snapshot_that_does_not_load_fails_first_and_stops_the_rest(blob, match, recs_log):
    report = run_checks(blob, loop_of({"type": "epsilon_greedy"}), recs_log)
    failed = report.first_failure()
    assert failed.name == "loads" and match in failed.message and not report.passed
    assert [c.passed for c in report.checks[1:]] == [None] * 4
    json.dumps(report.to_dict())


def test_a_nan_pmf_fails_the_pmf_check(recs_log):
    loop = loop_of({"type": "tests.service.test_checks:NaNPolicy"})
    report = run_checks(NaNPolicy().to_bytes(), loop, recs_log, latency_budget_ms=1000.0)
    failed = first_failure(report.checks)
    assert failed.name == "pmf" and "NaN" in failed.message
    assert failed.figures["invalid"] == 60


def test_a_plugin_without_a_documented_floor_needs_positive_probabilities(recs_log):
    loop = loop_of({"type": "tests.bandits.plugin_policy:Favourite", "favourite": "a1"})
    assert exploration_floor(loop) is None
    report = run_checks(loop.new_policy().to_bytes(), loop, recs_log, latency_budget_ms=1000.0)
    assert report.passed and report.checks[2].figures["rule"] == "p > 0"


def test_a_candidate_exploring_less_than_the_loop_fails_the_floor(recs_log):
    loop = loop_of({"type": "epsilon_greedy", "epsilon": 0.2})
    assert exploration_floor(loop) == 0.2
    candidate = trained(loop_of({"type": "epsilon_greedy", "epsilon": 0.01}), recs_log)
    report = run_checks(candidate, loop, recs_log, latency_budget_ms=1000.0)
    failed = report.first_failure()
    assert failed.name == "floor" and "p >= 0.2/K" in failed.message
    assert failed.figures["min_probability"] == pytest.approx(0.01 / 5)


@pytest.mark.parametrize("spec, share", [
    ({"type": "epsilon_greedy"}, 0.1), ({"type": "epsilon_greedy", "decay": 1.0}, 0.01),
    ({"type": "linucb"}, 0.01), ({"type": "lints", "epsilon": 0.2}, 0.2),
    ({"type": "vw"}, 0.001), ({"type": "vw", "floor": 0.0}, None)])
def test_the_floor_is_the_documented_share(spec, share):
    assert exploration_floor(loop_of(spec)) == share


def test_a_log_of_other_actions_does_not_fit_a_fixed_loop():
    loop = loop_of({"type": "epsilon_greedy", "model": "disjoint"}, HERO)
    log = fixed_log(["x", "y"], n=5)
    report = run_checks(loop.new_policy().to_bytes(), loop, log, latency_budget_ms=1000.0)
    failed = report.first_failure()
    assert failed.name == "actions" and "'x'" in failed.message
    assert failed.figures == {"fixed": True, "decisions": 6, "mismatched": 5}


def test_a_latency_budget_of_zero_fails(recs_log):
    loop = loop_of({"type": "linucb"})
    report = run_checks(trained(loop, recs_log), loop, recs_log, latency_budget_ms=0.0)
    failed = report.first_failure()
    assert failed.name == "latency" and failed.figures["p99_ms"] > 0
    assert [c.passed for c in report.checks] == [True, True, True, True, False]


def test_recent_decisions_reads_the_last_entries_oldest_first(client, r):
    ids = [client.post("/v1/loops/hero/rank", json={}).get_json()["event_id"] for _ in range(5)]
    r.xadd("cb:{hero}:log", {"j": b"not json"})
    log = LoopLog(r, "hero")
    assert [e["EventId"] for e in log.recent_decisions(4)] == ids[2:]
    assert [e["EventId"] for e in log.recent_decisions(1000)] == ids
