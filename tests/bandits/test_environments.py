"""Simulated environments: exact optimal rewards (brute force on small cases),
reproducible trajectories, and recovery after a change with a sliding window."""
import math

import numpy as np
import pytest

from bandits import BanditError, make_policy
from bandits.environments import (CatalogueEnv, LinearEnv, LogisticEnv, NonStationary,
                                  PositionEnv, SupervisedEnv, TreatmentEnv, make_environment,
                                  run_policy)
from bandits.environments.synthetic import sigmoid

DRAWS = 20000


def _monte_carlo_agrees(rnd, sd_of):
    """Each candidate's mean over DRAWS seeded rewards is within 4.5 standard errors of
    its expected reward, and the best empirical mean is within tolerance of optimal."""
    rng = np.random.default_rng(99)
    means = np.array([np.mean([rnd.reward(k, rng) for _ in range(DRAWS)]) for k in range(len(rnd.actions))])
    tol = 4.5 * np.array([sd_of(m) for m in rnd.expected]) / math.sqrt(DRAWS) + 1e-12
    assert (np.abs(means - rnd.expected) <= tol).all(), (means, rnd.expected)
    assert rnd.optimal == rnd.expected.max() and rnd.uniform == pytest.approx(rnd.expected.mean())


def test_linear_expected_reward_is_bias_plus_w_x_and_noise_averages_out():
    env = LinearEnv(n_actions=3, n_features=2, noise=0.5, seed=4)
    for t in range(3):
        rnd = env.round(t)
        x = np.array([rnd.context["user"]["f0"], rnd.context["user"]["f1"]])
        np.testing.assert_allclose(rnd.expected, env.bias + env.W @ x, rtol=0, atol=1e-12)
        assert rnd.optimal == max(env.bias[k] + env.W[k] @ x for k in range(3))
    _monte_carlo_agrees(env.round(0), lambda m: 0.5)


def test_logistic_clicks_have_the_sigmoid_probability():
    env = LogisticEnv(n_actions=3, n_features=2, scale=1.5, seed=5)
    rnd = env.round(1)
    x = np.array([rnd.context["user"]["f0"], rnd.context["user"]["f1"]])
    np.testing.assert_allclose(rnd.expected, sigmoid(1.5 * (env.bias + env.W @ x)), rtol=0, atol=1e-12)
    assert set(rnd.reward(k) for k in range(3) for _ in range(3)) <= {0.0, 1.0}
    _monte_carlo_agrees(rnd, lambda p: math.sqrt(p * (1 - p)))


def test_treatment_rounds_are_the_segment_table_and_segments_differ_in_their_best():
    env = TreatmentEnv(actions=["a", "b", "c", "d", "e"], seed=2)
    table = {}
    for seg in env.segments():  # brute force over all 24 segments
        table[repr(env.context_of(seg))] = env.ctr[seg]
    seen = np.zeros(len(env.segments()))
    for rnd in env.rounds(3000):
        expected = table[repr(rnd.context)]
        np.testing.assert_array_equal(rnd.expected, expected)
        assert rnd.optimal == expected.max()
        seen[list(table).index(repr(rnd.context))] += 1
    # segments arrive with their configured frequencies (binomial, 5 sd)
    p = env.weights.ravel()
    assert (np.abs(seen - 3000 * p) <= 5 * np.sqrt(3000 * p * (1 - p)) + 1).all()
    best = {int(np.argmax(env.ctr[seg])) for seg in env.segments()}
    assert len(best) >= 2, "context must matter: one treatment wins everywhere"
    _monte_carlo_agrees(env.round(0), lambda p: math.sqrt(p * (1 - p)))


@pytest.mark.parametrize("ids", [["a", "b", "c"], ["a"] * 4, [f"t{i}" for i in range(9)]])
def test_treatments_need_four_to_eight_distinct_ids(ids):
    with pytest.raises(BanditError, match="actions"):
        TreatmentEnv(actions=ids)


def test_catalogue_candidates_and_their_click_probability_by_brute_force():
    env = CatalogueEnv(n_items=6, n_candidates=3, n_categories=2, n_segments=2, seed=7)
    subsets = set()
    for rnd in env.rounds(200):
        ids = rnd.ids
        assert len(set(ids)) == 3
        subsets.add(tuple(sorted(ids)))
        s = int(rnd.context["user"]["segment"][1:])
        for k, action in enumerate(rnd.actions):
            i = int(action["id"].split("-")[1])
            item = action["features"]["item"]
            assert item == env.items[i]["features"]["item"]
            logit = (env.base + 0.4 * item["quality"] + env.taste[s, int(item["category"][1:])]
                     + env.price[s, ("low", "mid", "high").index(item["price"])])
            assert rnd.expected[k] == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-12)
        assert rnd.optimal == max(rnd.expected)
    assert len(subsets) == math.comb(6, 3)  # every subset turns up in 200 requests
    _monte_carlo_agrees(env.round(0), lambda p: math.sqrt(p * (1 - p)))


def test_supervised_rewards_the_true_class_only():
    env = SupervisedEnv.from_sklearn("iris", seed=1)
    assert [a["id"] for a in env.actions] == ["class-0", "class-1", "class-2"]
    for rnd in env.rounds(50):
        x = np.array([rnd.context["x"][f"f{j}"] for j in range(4)])
        row = int(np.argmin(np.abs(env.X - x).sum(axis=1)))  # the row it was drawn from
        assert rnd.expected.tolist() == [float(c == env.y[row]) for c in range(3)]
        assert rnd.optimal == 1.0 and rnd.uniform == pytest.approx(1 / 3)
        assert [rnd.reward(k) for k in range(3)] == rnd.expected.tolist()


def test_same_seed_same_trajectory_and_another_seed_another():
    def trajectory(seed):
        env = make_environment({"type": "catalogue", "n_items": 50, "seed": seed})
        return run_policy(make_policy({"type": "linucb", "alpha": 0.5}), env, 300, seed=seed)

    a, b, c = trajectory(3), trajectory(3), trajectory(4)
    assert a.chosen == b.chosen and a.reward == b.reward and a.probability == b.probability
    assert a.chosen != c.chosen


def test_delay_and_missing_rewards():
    env = LinearEnv(seed=1)
    policy = make_policy({"type": "epsilon_greedy"})
    traj = run_policy(policy, env, 1000, delay=30, missing=0.2)
    assert policy.n_learned == 1000 - 30  # the last 30 rewards are still on their way
    missing = int(np.isnan(traj.reward).sum())
    assert abs(missing - 200) <= 5 * math.sqrt(1000 * 0.2 * 0.8)


def test_best_fixed_action_is_the_best_column_in_hindsight():
    env = TreatmentEnv(seed=5)
    traj = run_policy(make_policy({"type": "epsilon_greedy", "epsilon": 1.0}), env, 500)
    expected = np.array([env.round(t).expected for t in range(500)])
    np.testing.assert_allclose(traj.best_fixed(), expected[:, expected.mean(axis=0).argmax()])
    summary = traj.summary()
    assert summary["uniform"] == pytest.approx(expected.mean())
    assert summary["optimal"] == pytest.approx(expected.max(axis=1).mean())


def test_non_stationary_reverses_the_rewards_at_the_change():
    base = LinearEnv(n_actions=4, seed=6)
    env = NonStationary(base, change_at=10)
    assert all(env.round(t).context == base.round(t).context for t in range(20))
    np.testing.assert_array_equal(env.round(9).expected, base.round(9).expected)
    np.testing.assert_array_equal(env.round(10).expected, base.round(10).expected[::-1])
    changed = np.mean([np.argmax(env.round(t).expected) != np.argmax(base.round(t).expected)
                       for t in range(10, 510)])
    assert changed > 0.9


def test_a_sliding_window_recovers_after_the_change():
    """Regret per round, seeds fixed: before the change ~0.20 for both; in the last 1000
    rounds after it 0.22 with a window of 500 and 1.13 without (measured)."""
    def regret(window):
        env = make_environment({"type": "linear", "n_actions": 4, "change_at": 2000, "seed": 0})
        policy = make_policy({"type": "epsilon_greedy", "epsilon": 0.1, "model": "disjoint",
                              "window": window})
        traj = run_policy(policy, env, 4000)
        gap = np.subtract(traj.optimal, traj.expected)
        return gap[1500:2000].mean(), gap[-1000:].mean()

    before, after = regret(500)
    stuck_before, stuck_after = regret(0)
    assert after <= before + 0.05, (before, after)
    assert stuck_after >= 3 * after, (stuck_after, after)


def test_make_environment_names_the_bad_key():
    with pytest.raises(BanditError, match="env.type"):
        make_environment({"type": "casino"})
    with pytest.raises(BanditError, match="env.n_candidates"):
        make_environment({"type": "catalogue", "n_items": 5, "n_candidates": 9})
    with pytest.raises(BanditError, match="env.colour: unknown parameter"):
        make_environment({"type": "linear", "colour": 3})
    with pytest.raises(BanditError, match="dataset"):
        make_environment({"type": "supervised", "dataset": "mnist"})


def test_position_clicks_are_relevance_times_examination():
    env = PositionEnv(n_items=30, n_candidates=6, n_positions=4, n_categories=3, n_segments=2,
                      base_ctr=0.2, contrast=0.0, seed=5)  # no taste: relevance from quality
    rnd = env.round(3)
    shown = [4, 1, 5, 0]
    quality = np.array([rnd.actions[k]["features"]["item"]["quality"] for k in shown])
    relevance = 1 / (1 + np.exp(-(math.log(0.2 / 0.8) + 0.5 * quality)))
    np.testing.assert_allclose(env.click_probabilities(rnd, shown),
                               relevance * [1, 1 / 2, 1 / 3, 1 / 4], rtol=0, atol=1e-12)
    geometric = PositionEnv(n_items=30, n_candidates=6, n_positions=4, n_categories=3,
                            n_segments=2, base_ctr=0.2, contrast=0.0, decay=0.5, seed=5)
    np.testing.assert_allclose(geometric.click_probabilities(geometric.round(3), shown),
                               relevance * [1, 0.5, 0.25, 0.125], rtol=0, atol=1e-12)
    assert env.best_list(rnd) == sorted(range(6), key=lambda k: -rnd.expected[k])[:4]
    with pytest.raises(ValueError, match="shown: 1..4 distinct"):
        env.click_probabilities(rnd, [1, 1])


def test_position_relevance_follows_the_segments_taste():
    env = PositionEnv(n_items=40, n_candidates=8, n_positions=3, n_categories=4, n_segments=3,
                      seed=2)
    for t in range(5):
        rnd = env.round(t)
        s = int(rnd.context["user"]["segment"][1:])
        for k, action in enumerate(rnd.actions):
            item = action["features"]["item"]
            z = env.base + env.taste[s, int(item["category"][1:])] + 0.5 * item["quality"]
            assert rnd.expected[k] == pytest.approx(sigmoid(z), abs=1e-12)


def test_position_clicks_are_seeded_and_share_each_places_uniform():
    env, same, other = (PositionEnv(n_candidates=20, n_positions=5, seed=s) for s in (7, 7, 8))
    a = [env.clicks(env.round(t), [0, 1, 2, 3, 4]) for t in range(50)]
    assert all((x == same.clicks(same.round(t), [0, 1, 2, 3, 4])).all() for t, x in enumerate(a))
    assert [env.round(t).ids for t in range(5)] != [other.round(t).ids for t in range(5)]
    for t in range(300):  # one uniform per place: a likelier list clicks wherever the other does
        rnd = env.round(t)
        best, worst = env.best_list(rnd), list(np.argsort(rnd.expected)[:5])
        assert (env.clicks(rnd, best) >= env.clicks(rnd, worst)).all()


def test_position_clicks_average_to_their_probabilities():
    env = PositionEnv(n_candidates=10, n_positions=5, base_ctr=0.3, seed=4)
    rounds = [env.round(t) for t in range(4000)]
    clicks = np.array([env.clicks(r, [0, 1, 2, 3, 4]) for r in rounds])
    p = np.array([env.click_probabilities(r, [0, 1, 2, 3, 4]) for r in rounds])
    sd = np.sqrt((p * (1 - p)).sum(axis=0))
    assert (np.abs(clicks.sum(axis=0) - p.sum(axis=0)) <= 4.5 * sd).all()
    assert (p.mean(axis=0)[1:] < p.mean(axis=0)[:-1]).all()  # lower places are clicked less
    assert env.expected_clicks(rounds[0], [0, 1]) == pytest.approx(p[0, :2].sum())
