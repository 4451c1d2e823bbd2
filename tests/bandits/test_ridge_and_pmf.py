"""Known answers: ridge state equals the closed form; pmfs are exactly as specified."""
import numpy as np
import pytest

from bandits import EpsilonGreedy, Feedback, LinTS, LinUCB, greedy_pmf, sample_index
from bandits.ridge import RidgeBank

from .conftest import ACTIONS, CONTEXT


def _closed_form(X, r, l2, w=None):
    w = np.ones(len(r)) if w is None else w
    A = l2 * np.eye(X.shape[1]) + (X * w[:, None]).T @ X
    b = (X * (w * r)[:, None]).sum(axis=0)
    return A, b, np.linalg.solve(A, b)


def test_ridge_bank_matches_closed_form_after_n_updates():
    rng = np.random.default_rng(0)
    X, r, w = rng.normal(size=(300, 12)), rng.normal(size=300), rng.uniform(0.5, 3, 300)
    bank = RidgeBank(12, l2=0.7)
    i = bank.arm("x")
    for x, y, wt in zip(X, r, w):
        bank.update(i, x, y, wt)
    A, b, theta = _closed_form(X, r, 0.7, w)
    np.testing.assert_allclose(bank.A_[i], A, rtol=0, atol=1e-9)
    np.testing.assert_allclose(bank.b_[i], b, rtol=0, atol=1e-9)
    np.testing.assert_allclose(bank.A_inv_[i], np.linalg.inv(A), rtol=0, atol=1e-9)
    np.testing.assert_allclose(bank.theta_[i], theta, rtol=0, atol=1e-9)
    assert bank.counts_.tolist() == [300]


@pytest.mark.parametrize("model", ["shared", "disjoint"])
def test_linucb_state_is_the_closed_form(model):
    rng = np.random.default_rng(1)
    policy = LinUCB(alpha=0.5, model=model, l2=2.0)
    rows = {a["id"]: [] for a in ACTIONS}
    rewards = {a["id"]: [] for a in ACTIONS}
    for t in range(200):
        ctx = {"user": {"x": float(rng.normal()), "y": float(rng.normal()), "s": f"s{t % 4}"}}
        k = int(rng.integers(len(ACTIONS)))
        r = float(rng.normal())
        feats = policy.features(ctx, ACTIONS)
        policy.learn([Feedback(ctx, ACTIONS, k, 0.2, r)])
        key = ACTIONS[k]["id"] if model == "disjoint" else "*"
        rows.setdefault(key, []).append(feats.X[k])
        rewards.setdefault(key, []).append(r)
    bank = policy.bank_
    for key, i in zip(bank.arm_ids_, range(len(bank.arm_ids_))):
        A, b, theta = _closed_form(np.array(rows[key]), np.array(rewards[key]), 2.0)
        np.testing.assert_allclose(bank.A_[i], A, rtol=0, atol=1e-9)
        np.testing.assert_allclose(bank.b_[i], b, rtol=0, atol=1e-9)
        np.testing.assert_allclose(bank.A_inv_[i] @ A, np.eye(A.shape[0]), rtol=0, atol=1e-9)
        np.testing.assert_allclose(bank.theta_[i], theta, rtol=0, atol=1e-9)
    # and the scores are θᵀx + α√(xᵀA⁻¹x) with that state
    ctx = {"user": {"x": 0.3, "y": -1.0, "s": "s1"}}
    feats = policy.features(ctx, ACTIONS)
    d = policy.decide(ctx, ACTIONS)
    for k, x in enumerate(feats.X):
        i = 0 if model == "shared" else bank.arm_ids_.index(ACTIONS[k]["id"])
        A = bank.A_[i]
        ucb = x @ np.linalg.solve(A, bank.b_[i]) + 0.5 * np.sqrt(x @ np.linalg.solve(A, x))
        assert d.scores[k] == pytest.approx(ucb, abs=1e-9)


def test_greedy_pmf_is_exact():
    assert greedy_pmf(np.array([0.1, 0.9, 0.3, 0.2]), 0.2).tolist() == [0.05, 1 - 0.2 + 0.2 / 4, 0.05, 0.05]
    ties = greedy_pmf(np.array([1.0, 0.0, 1.0]), 0.3)
    assert ties.tolist() == pytest.approx([0.35 + 0.1, 0.1, 0.35 + 0.1], abs=1e-15)
    assert ties.sum() == pytest.approx(1.0, abs=1e-15)


def test_epsilon_greedy_propensities_and_decay():
    p = EpsilonGreedy(epsilon=0.3, model="disjoint")
    p.learn([Feedback({}, ["a", "b", "c"], 1, 1 / 3, 1.0)])
    d = p.decide({}, ["a", "b", "c"])
    assert d.pmf[1] == 1 - 0.3 + 0.3 / 3 and d.pmf[0] == d.pmf[2] == 0.3 / 3
    decaying = EpsilonGreedy(epsilon=0.5, decay=1.0, min_epsilon=0.05)
    assert decaying.current_epsilon() == 0.5
    decaying.learn([Feedback({}, ["a", "b"], 0, 0.5, 1.0)] * 4)
    assert decaying.current_epsilon() == pytest.approx(0.5 / 5)
    decaying.learn([Feedback({}, ["a", "b"], 0, 0.5, 1.0)] * 100)
    assert decaying.current_epsilon() == 0.05


def test_linucb_pmf_puts_one_minus_epsilon_on_the_argmax():
    p = LinUCB(alpha=1.0, epsilon=0.05)
    p.learn([Feedback(CONTEXT, ACTIONS, 2, 0.2, 3.0)])
    d = p.decide(CONTEXT, ACTIONS)
    best = int(np.argmax(d.scores))
    assert d.pmf[best] == pytest.approx(1 - 0.05 + 0.05 / 5, abs=1e-15)
    assert all(d.pmf[k] == pytest.approx(0.01, abs=1e-15) for k in range(5) if k != best)


def test_lints_pmf_is_draw_frequencies_plus_floor():
    p = LinTS(n_draws=10, epsilon=0.1, model="disjoint")
    for t in range(30):
        p.learn([Feedback({}, ["a", "b", "c"], t % 3, 1 / 3, [0.0, 0.5, 0.6][t % 3])])
    pmf = p.decide({}, ["a", "b", "c"]).pmf
    wins = (pmf - 0.1 / 3) / 0.9 * 10
    np.testing.assert_allclose(wins, np.round(wins), atol=1e-9)  # whole draws (no ties here)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12) and (pmf >= 0.1 / 3 - 1e-15).all()


def test_sampling_is_reproducible_and_follows_the_pmf():
    pmf = np.array([0.1, 0.0, 0.6, 0.3])
    draws = [sample_index(pmf, 42, f"ev-{i}") for i in range(20000)]
    assert draws == [sample_index(pmf, 42, f"ev-{i}") for i in range(20000)]
    freq = np.bincount(draws, minlength=4) / 20000
    assert freq[1] == 0
    # binomial standard error at n=20000 is <= 0.0035; allow 4 of them
    np.testing.assert_allclose(freq, pmf, atol=0.014)
    other_seed = [sample_index(pmf, 43, f"ev-{i}") for i in range(200)]
    assert other_seed != draws[:200]


@pytest.mark.parametrize("pmf", [[], [0.0, 0.0], [0.5, -0.1], [np.nan, 1.0]])
def test_sampling_refuses_invalid_pmfs(pmf):
    with pytest.raises(ValueError, match="pmf"):
        sample_index(np.array(pmf), 0, "e")


def test_decision_ranking_orders_by_score_then_probability():
    from bandits import Decision

    d = Decision(("a", "b", "c", "d"), np.array([0.1, 0.4, 0.4, 0.1]), np.array([1.0, 3.0, 3.0, 2.0]), "x")
    assert d.ranking() == [1, 2, 3, 0]


@pytest.mark.parametrize("n", [5, 40, 257])
def test_windowed_bank_is_the_closed_form_of_its_last_w_observations(n):
    rng = np.random.default_rng(n)
    X, r, w = rng.normal(size=(n, 6)), rng.normal(size=n), rng.uniform(0.5, 3, n)
    arms = rng.integers(3, size=n)
    bank = RidgeBank(6, l2=0.5, window=16)
    for k in range(3):
        bank.arm(f"a{k}")
    for x, y, wt, k in zip(X, r, w, arms):
        bank.update(int(k), x, y, wt)
    last = np.arange(n) >= n - 16
    for k in range(3):
        sel = last & (arms == k)
        A, b, theta = _closed_form(X[sel], r[sel], 0.5, w[sel])
        np.testing.assert_allclose(bank.A_[k], A, rtol=0, atol=1e-9)
        np.testing.assert_allclose(bank.b_[k], b, rtol=0, atol=1e-9)
        np.testing.assert_allclose(bank.A_inv_[k], np.linalg.inv(A), rtol=0, atol=1e-9)
        np.testing.assert_allclose(bank.theta_[k], theta, rtol=0, atol=1e-9)
    assert bank.counts_.tolist() == np.bincount(arms, minlength=3).tolist()


def test_windowed_policy_snapshot_keeps_the_window():
    rng = np.random.default_rng(3)
    policy = EpsilonGreedy(epsilon=0.1, model="disjoint", window=10)

    def batch(m):
        return [Feedback({"u": {"x": float(rng.normal())}}, ACTIONS, int(rng.integers(5)), 0.2,
                         float(rng.normal())) for _ in range(m)]

    policy.learn(batch(25))
    clone = EpsilonGreedy.from_bytes(policy.to_bytes())
    more = batch(7)  # the clone must drop the same old rows the original drops
    policy.learn(more)
    clone.learn(more)
    np.testing.assert_array_equal(clone.bank_.A_, policy.bank_.A_)
    np.testing.assert_array_equal(clone.bank_.theta_, policy.bank_.theta_)
    assert clone.window == 10 and clone.bank_.win_n_ == 32


def test_lints_redraws_an_arm_whose_old_events_left_the_window():
    """Arm a's state changes when b's event pushes a's oldest out of the window, although
    a itself was not updated: its posterior draws must follow (mean θ_a, 4000 draws)."""
    policy = LinTS(v=0.5, n_draws=4000, model="disjoint", window=2)

    def learn(action, reward):
        policy.learn([Feedback({}, ["a", "b"], ["a", "b"].index(action), 0.5, reward)])

    learn("a", 10.0)
    learn("a", 0.0)
    policy.decide({}, ["a", "b"])
    assert policy._draws["a"][1][:, 0].mean() == pytest.approx(10 / 3, abs=0.05)
    learn("b", 0.0)  # evicts a's reward of 10: θ_a = 0
    policy.decide({}, ["a", "b"])
    assert policy.bank_.theta_[0][0] == pytest.approx(0.0, abs=1e-12)
    assert policy._draws["a"][1][:, 0].mean() == pytest.approx(0.0, abs=0.05)
