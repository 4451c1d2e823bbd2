"""Per-decision importance sampling: closed-form values, the logger's own return, an
unbiasedness check, and refused input."""
import numpy as np
import pytest

from replay.errors import EstimatorError, ReplayWarning
from replay.sequential import pdis, step_matrices, wpdis

# episode e1: (r, μ, π) = (1, .5, 1), (2, .25, .5) → ρ = 2, 4;  e2: (5, .5, .25) → ρ = .5
HAND = {"rewards": [1.0, 2.0, 5.0], "propensities": [0.5, 0.25, 0.5],
        "target_probs": [1.0, 0.5, 0.25], "episodes": ["e1", "e1", "e2"]}


def test_closed_form_values():
    rho, disc = step_matrices(**HAND)
    np.testing.assert_allclose(rho, [[2.0, 4.0], [0.5, 0.5]])      # e2 keeps its last weight
    np.testing.assert_allclose(disc, [[1.0, 2.0], [5.0, 0.0]])
    e = pdis(**HAND)
    assert e.value == pytest.approx((2 * 1 + 4 * 2 + 0.5 * 5) / 2)            # 6.25
    terms = np.array([10.0, 2.5])
    half = 1.959963984540054 * terms.std(ddof=1) / np.sqrt(2)
    assert (e.low, e.high) == pytest.approx((6.25 - half, 6.25 + half))
    assert e.ess == pytest.approx(4.5 ** 2 / (16 + 0.25)) and e.n == 2
    assert pdis(**HAND, gamma=0.5).value == pytest.approx((2 + 0.5 * 4 * 2 + 2.5) / 2)
    w = wpdis(**HAND)
    assert w.value == pytest.approx((2 * 1 + 0.5 * 5) / 2.5 + (4 * 2) / 4.5)
    assert w.low <= w.value <= w.high and w.ci == "bootstrap"


def test_the_logger_evaluated_on_its_own_logs_is_its_mean_return():
    same = {**HAND, "target_probs": HAND["propensities"]}
    assert pdis(**same).value == (1 + 2 + 5) / 2
    assert wpdis(**same).value == pytest.approx((1 + 2 + 5) / 2)


def test_pdis_is_unbiased_on_simulated_episodes():
    """Logger uniform over 2 actions, reward = action, 3 steps; the target picks action 1
    with 0.8, so its true return is 2.4. 20,000 seeded episodes; 4 standard errors."""
    rng = np.random.default_rng(7)
    n, steps = 20000, 3
    actions = rng.integers(0, 2, n * steps)
    est = pdis(rewards=actions.astype(float), propensities=np.full(n * steps, 0.5),
               target_probs=np.where(actions == 1, 0.8, 0.2),
               episodes=np.repeat(np.arange(n), steps))
    assert abs(est.value - 2.4) < 4 * (est.high - est.value) / 1.96
    assert est.low < 2.4 < est.high


def test_bad_input_is_refused_naming_the_field():
    with pytest.raises(EstimatorError, match="episodes: steps of episode 'e1' are not contiguous"):
        pdis(**{**HAND, "episodes": ["e1", "e2", "e1"]})
    with pytest.raises(EstimatorError, match=r"propensities: row 1 is 0.0, outside \(0, 1\]"):
        pdis(**{**HAND, "propensities": [0.5, 0.0, 0.5]})
    with pytest.raises(EstimatorError, match="target_probs: row 2"):
        wpdis(**{**HAND, "target_probs": [1.0, 0.5, 1.5]})
    with pytest.raises(EstimatorError, match="episodes: has 2 entries"):
        pdis(**{**HAND, "episodes": ["e1", "e1"]})
    with pytest.raises(EstimatorError, match="gamma"):
        pdis(**HAND, gamma=1.5)


def test_a_collapsed_effective_sample_size_warns():
    """One episode of 200 carries nearly all the weight: ESS ≈ 1."""
    n = 200
    target = np.full(n, 0.0001)
    target[0] = 1.0
    with pytest.warns(ReplayWarning, match="effective sample size 1.0 is under 1% of 200"):
        pdis(rewards=np.ones(n), propensities=np.full(n, 0.01), target_probs=target,
             episodes=np.arange(n))
