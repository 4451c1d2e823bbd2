"""Feature evaluation (replay.features): a namespace that drives the reward is ranked
first, with its paired loss interval above every irrelevant namespace's; too little
overlap is reported, never tabled with confidence."""
import re

import numpy as np
import pytest

from bandits import dsjson, make_policy
from replay.errors import ReplayError
from replay.features import (Namespace, drop_namespace, evaluate_features,
                             find_namespaces, namespace_label)
from replay.logs import concat
from replay.readers import EventLog

#: The simulated log: 5 actions, a uniform logger; the reward depends only on the user's
#: segment interacting with the action (0.5 for the segment's best action, else 0.3).
ACTIONS, SEGMENTS = 5, 5
SPEC = {"type": "epsilon_greedy", "epsilon": 0.1}
FEATURIZER = {"context_dim": 16, "action_dim": 8, "interaction_dim": 32}


def feature_log(n: int, seed: int = 7, logger: str = "uniform") -> list:
    """``n`` labelled DSJSON events; namespaces "device" and "noise" and the actions'
    "item" are irrelevant to the reward. ``logger="deterministic"`` always shows item-0."""
    rng = np.random.default_rng(seed)
    actions = [(f"item-{j}", {"item": {"shelf": f"shelf-{j % 2}"}}) for j in range(ACTIONS)]
    best = rng.permutation(ACTIONS)[:SEGMENTS]
    events = []
    for t in range(n):
        segment = int(rng.integers(SEGMENTS))
        context = {"user": {"segment": f"s{segment}"},
                   "device": {"os": str(rng.choice(["ios", "android", "web"]))},
                   "noise": {"x": float(rng.normal()), "y": float(rng.normal())}}
        if logger == "uniform":
            pmf, chosen = np.full(ACTIONS, 1.0 / ACTIONS), int(rng.integers(ACTIONS))
        else:
            pmf, chosen = np.eye(ACTIONS)[0], 0
        reward = float(rng.random() < (0.5 if chosen == best[segment] else 0.3))
        order = [chosen] + [i for i in range(ACTIONS) if i != chosen]
        event = dsjson.decision_event(loop="feat", event_id=f"e{t}", epoch_s=1.7e9 + t,
                                      context=context, actions=actions, order=order, pmf=pmf,
                                      policy="uniform", version=0, deferred=False)
        events.append(dsjson.with_label(event, reward))
    return events


def rounds_of(events):
    return concat(list(EventLog("memory", lambda: ((f"event {i}", e) for i, e in enumerate(events))).chunks()))


def fit(rounds):
    policy = make_policy(SPEC, FEATURIZER)
    batch = [{"context": c, "actions": a, "chosen": int(k), "propensity": float(p), "reward": float(r)}
             for c, a, k, p, r in zip(rounds.contexts, rounds.actions, rounds.chosen,
                                      rounds.propensities, rounds.rewards)]
    for start in range(0, len(batch), 500):
        policy.learn(batch[start:start + 500])
    return policy


@pytest.fixture(scope="module")
def result():
    """5,000 events (seed 7), the last 30 % (1,500) held out."""
    return evaluate_features(rounds_of(feature_log(5000)), fit, holdout=0.3)


def test_the_relevant_namespace_is_ranked_first_and_apart(result):
    by_name = {r.namespace: r for r in result.rows}
    assert set(by_name) == {"context:user", "context:device", "context:noise", "action:item"}
    user = by_name["context:user"]
    assert result.warning is None and all(r.trusted for r in result.rows)
    assert result.rows[0] is user and user.rank == 1 and not user.candidate_to_drop
    for name in ("context:device", "context:noise", "action:item"):
        assert user.low > by_name[name].high, name
        assert by_name[name].candidate_to_drop, name
    assert (result.train_rounds, result.holdout_rounds) == (3500, 1500)


def test_the_loss_is_the_difference_of_the_dr_values(result):
    base = result.baseline.dr["value"]
    for row in result.rows:
        assert row.loss == pytest.approx(base - row.policy.dr["value"], abs=1e-9)
        assert row.low <= row.loss <= row.high


def test_every_figure_is_in_the_dict(result):
    out = result.to_dict()
    assert out["trusted"] is True and out["warning"] is None
    assert out["baseline"]["dr"]["estimator"] == "dr" and out["baseline"]["snips"]["ess"] > 30
    assert [r["namespace"] for r in out["rows"]][0] == "context:user"


def test_a_deterministic_logger_gives_the_overlap_warning():
    out = evaluate_features(rounds_of(feature_log(1000, logger="deterministic")), fit)
    assert out.warning and out.warning.startswith("overlap too small")
    assert "never tried" in out.warning
    assert all(r.low is None and r.rank is None and r.candidate_to_drop is None for r in out.rows)


def test_twenty_held_out_events_give_the_overlap_warning():
    out = evaluate_features(rounds_of(feature_log(200)), fit, holdout=0.1)
    assert out.holdout_rounds == 20
    assert "overlap too small" in out.warning and f"of 20 held-out rounds" in out.warning
    assert out.to_dict()["trusted"] is False


def test_namespaces_are_found_and_dropped_without_changing_the_rounds():
    rounds = rounds_of(feature_log(20))
    spaces = find_namespaces(rounds)
    assert [namespace_label(ns) for ns in spaces] == [
        "context:device", "context:noise", "context:user", "action:item"]
    without = drop_namespace(rounds, Namespace("action", "item"))
    assert all(a["features"] == {} for actions in without.actions for a in actions)
    assert rounds.actions[0][0]["features"] == {"item": {"shelf": "shelf-0"}}
    assert "user" not in drop_namespace(rounds, Namespace("context", "user")).contexts[0]
    assert "user" in rounds.contexts[0]


def test_bootstrap_intervals_are_seeded():
    rounds = rounds_of(feature_log(1000, seed=3))
    one, two = (evaluate_features(rounds, fit, ci="bootstrap", seed=5) for _ in range(2))
    assert one.baseline.dr["ci"] == "bootstrap" and one.warning is None
    for a, b in zip(one.rows, two.rows):
        assert (a.low, a.high) == (b.low, b.high) and a.low <= a.loss <= a.high


@pytest.mark.parametrize("kwargs, message", [
    ({"ci": "wide"}, "ci: must be one of normal, bootstrap, got 'wide'"),
    ({"level": 1.0}, "level: must be in (0, 1), got 1.0"),
])
def test_bad_settings_are_refused_before_training(kwargs, message):
    def never(rounds):
        raise AssertionError("trained")
    with pytest.raises(ReplayError, match=re.escape(message)):
        evaluate_features(rounds_of(feature_log(20)), never, **kwargs)


@pytest.mark.parametrize("holdout", [0, 1, 1.5, -0.2, True])
def test_a_holdout_outside_the_unit_interval_is_refused(holdout):
    with pytest.raises(ReplayError, match="^holdout: "):
        evaluate_features(rounds_of(feature_log(20)), fit, holdout=holdout)
