"""Known-answer, invalid-input and warning tests of replay.estimators."""
import math
import statistics
import warnings

import numpy as np
import pytest

from replay.errors import EstimatorError, ReplayWarning
from replay.estimators import MIN_ESS, dm, dr, effective_sample_size, ips, sndr, snips
from replay.rejection import RejectionReplay

Z95 = statistics.NormalDist().inv_cdf(0.975)

# A hand-built log of 4 rounds, 2 actions. w = π/μ = [2, 1, 0.8, 0]. Its ESS is under
# MIN_ESS, so the closed-form interval tests turn the sample-size rule off (min_ess=0).
LOG = dict(
    min_ess=0,
    rewards=np.array([1.0, 0.0, 1.0, 0.0]),
    propensities=np.array([0.5, 0.5, 0.25, 0.75]),
    actions=np.array([0, 1, 0, 1]),
    target_pmf=np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8], [1.0, 0.0]]),
    q_hat=np.array([[0.8, 0.2], [0.5, 0.1], [0.6, 0.4], [0.3, 0.9]]),
)
LOG["target_probs"] = LOG["target_pmf"][np.arange(4), LOG["actions"]]
W = [2.0, 1.0, 0.8, 0.0]
DM_TERMS = [0.8, 0.3, 0.44, 0.3]          # Σ_k π(k|x) q̂(x, k)
RESID = [0.2, -0.1, 0.4, -0.9]            # r − q̂(x, a)


def half(terms):
    return Z95 * statistics.stdev(terms) / math.sqrt(len(terms))


def test_ips_closed_form():
    est = ips(**LOG)
    assert est.value == pytest.approx(0.7, abs=1e-12)
    terms = [w * r for w, r in zip(W, LOG["rewards"])]
    assert est.high - est.value == pytest.approx(half(terms), abs=1e-12)
    assert est.value - est.low == pytest.approx(half(terms), abs=1e-12)
    assert est.ess == pytest.approx(3.8 ** 2 / 5.64, abs=1e-12)
    assert (est.n, est.level, est.ci, est.estimator) == (4, 0.95, "normal", "ips")


def test_snips_closed_form_and_delta_method_interval():
    est = snips(**LOG)
    value = 2.8 / 3.8
    assert est.value == pytest.approx(value, abs=1e-12)
    influence = [w * (r - value) / (3.8 / 4) for w, r in zip(W, LOG["rewards"])]
    assert est.high - est.value == pytest.approx(half(influence), abs=1e-12)


def test_dm_closed_form():
    est = dm(**LOG)
    assert est.value == pytest.approx(0.46, abs=1e-12)
    assert est.high - est.value == pytest.approx(half(DM_TERMS), abs=1e-12)
    assert est.ess == 4.0


def test_dr_closed_form():
    est = dr(**LOG)
    terms = [b + w * e for b, w, e in zip(DM_TERMS, W, RESID)]
    assert est.value == pytest.approx(0.46 + 0.62 / 4, abs=1e-12)
    assert est.high - est.value == pytest.approx(half(terms), abs=1e-12)
    assert est.ess == pytest.approx(3.8 ** 2 / 5.64, abs=1e-12)


def test_sndr_closed_form():
    est = sndr(**LOG)
    corr = 0.62 / 3.8
    assert est.value == pytest.approx(0.46 + corr, abs=1e-12)
    influence = [b + w * (e - corr) / (3.8 / 4) for b, w, e in zip(DM_TERMS, W, RESID)]
    assert est.high - est.value == pytest.approx(half(influence), abs=1e-12)


def test_dr_derives_target_probs_from_the_pmf():
    without = {k: v for k, v in LOG.items() if k != "target_probs"}
    assert dr(**without).value == dr(**LOG).value


def test_ips_of_the_logging_policy_is_the_mean_reward_exactly():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 1.0, 10_001)
    r = rng.normal(size=p.size)
    assert ips(rewards=r, propensities=p, target_probs=p).value == r.mean()
    assert snips(rewards=r, propensities=p, target_probs=p).value == pytest.approx(r.mean(), abs=1e-12)


def test_interval_level_and_bootstrap():
    rng = np.random.default_rng(0)
    n = 4000
    p = rng.uniform(0.2, 0.8, n)
    t = rng.uniform(0.0, 1.0, n)
    r = rng.binomial(1, 0.4, n).astype(float)
    args = dict(rewards=r, propensities=p, target_probs=t)
    normal, wide = ips(**args), ips(**args, level=0.99)
    assert wide.high - wide.low > normal.high - normal.low
    boot = ips(**args, ci="bootstrap", n_boot=400, seed=1)
    assert boot.ci == "bootstrap" and boot.low < boot.value < boot.high
    # with 4,000 rounds the percentile bootstrap and the normal interval agree to 10%
    assert boot.high - boot.low == pytest.approx(normal.high - normal.low, rel=0.1)
    assert ips(**args, ci="bootstrap", n_boot=400, seed=1) == boot  # seeded
    sn = snips(**args, ci="bootstrap", n_boot=400, seed=1)
    assert sn.low < sn.value < sn.high


def test_effective_sample_size():
    assert effective_sample_size(np.ones(10)) == 10.0
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == 1.0


def test_warning_for_tiny_propensities():
    args = dict(rewards=np.ones(4), propensities=np.array([0.5, 0.0005, 0.5, 0.5]), min_ess=0,
                target_probs=np.array([0.5, 0.0, 0.5, 0.5]))
    with pytest.warns(ReplayWarning, match="1 of 4 propensities are below 0.001"):
        ips(**args)


def test_warning_when_the_target_leaves_the_loggers_support():
    logging_pmf = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])
    with pytest.warns(ReplayWarning, match="20.00% of its mass on actions the logger never"):
        dr(**LOG, logging_pmf=logging_pmf)  # round 3: the target gives action 2 0.8


def test_warning_for_a_tiny_effective_sample_size():
    n = 1000
    t = np.zeros(n)
    t[0] = 1.0
    with pytest.warns(ReplayWarning, match="effective sample size"):
        ips(rewards=np.ones(n), propensities=np.full(n, 0.5), target_probs=t)


@pytest.mark.parametrize("fn", [ips, snips, dm, dr, sndr])
@pytest.mark.parametrize("ci", ["normal", "bootstrap"])
def test_no_interval_under_the_minimum_ess(fn, ci):
    args = {**LOG, "min_ess": MIN_ESS, "ci": ci}
    with pytest.warns(ReplayWarning, match=r"effective sample size (2\.6|4\.0) is under 30: "
                                           r"too few to size an interval \(shown as n/a\)"):
        est = fn(**args)
    assert math.isnan(est.low) and math.isnan(est.high)
    assert est.value == fn(**LOG).value  # the point estimate is kept


def test_the_minimum_ess_is_inclusive():
    """Logging policy on itself: w = 1, so ESS = n exactly."""
    rng = np.random.default_rng(7)
    for n, has_interval in ((MIN_ESS - 1, False), (MIN_ESS, True)):
        p = rng.uniform(0.2, 0.9, n)
        args = dict(rewards=rng.normal(size=n), propensities=p, target_probs=p)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = ips(**args)
        assert est.ess == pytest.approx(n) and math.isfinite(est.low) == has_interval, n
        assert any("too few" in str(w.message) for w in caught) != has_interval


def test_no_zero_width_interval():
    p = np.full(40, 0.5)
    with pytest.warns(ReplayWarning, match=r"ips: the interval has zero width \(every term is equal"):
        est = ips(rewards=np.ones(40), propensities=p, target_probs=p)
    assert est.value == 1.0 and math.isnan(est.low) and math.isnan(est.high)


def test_replay_has_no_interval_under_30_accepted_rounds():
    replay = RejectionReplay(policy=None, min_propensity=0.004)
    replay.seen, replay.accepted = 600, [1.0]
    with pytest.warns(ReplayWarning, match=r"^replay: 1 accepted round is under 30: too few to "
                                           r"size an interval \(shown as n/a\)$"):
        est = replay.estimate()
    assert (est.value, est.ess, est.n) == (1.0, 1.0, 600)
    assert math.isnan(est.low) and math.isnan(est.high)
    replay.accepted = [float(i % 2) for i in range(MIN_ESS)]
    est = replay.estimate()
    assert est.value == 0.5 and est.high - est.value == pytest.approx(half(replay.accepted))


BAD = [
    ("rewards missing", ips, {"rewards": None}, "rewards: required"),
    ("empty", ips, {"rewards": [], "propensities": [], "target_probs": []}, "non-empty"),
    ("2-d rewards", ips, {"rewards": np.ones((4, 1))}, "rewards: must be a non-empty 1-d"),
    ("length mismatch", ips, {"propensities": [0.5, 0.5]}, "propensities: has 2 rows"),
    ("zero propensity", ips, {"propensities": [0.5, 0.0, 0.5, 0.5]}, "row 1 is 0.0"),
    ("propensity > 1", snips, {"propensities": [0.5, 1.5, 0.5, 0.5]}, r"\(0, 1\], row 1"),
    ("nan propensity", ips, {"propensities": [0.5, np.nan, 0.5, 0.5]}, "propensities: must be in"),
    ("target < 0", ips, {"target_probs": [0.5, -0.1, 0.5, 0.5]}, "target_probs: must be in"),
    ("nan reward", ips, {"rewards": [1.0, np.nan, 0.0, 0.0]}, "rewards: must be finite"),
    ("inf reward", dr, {"rewards": [1.0, np.inf, 0.0, 0.0]}, "must be finite"),
    ("q_hat missing", dm, {"q_hat": None}, "q_hat: required"),
    ("q_hat shape", dr, {"q_hat": np.zeros((4, 3))}, "must both be"),
    ("pmf not summing to 1", dm, {"target_pmf": np.full((4, 2), 0.4)}, "target_pmf: row 0"),
    ("negative pmf", dm, {"target_pmf": np.array([[1.5, -0.5]] * 4)}, "target_pmf: row 0"),
    ("actions missing", dr, {"actions": None}, "actions: required"),
    ("float actions", dr, {"actions": np.zeros(4)}, "integer array"),
    ("action out of range", sndr, {"actions": np.array([0, 2, 0, 1])}, r"0\.\.1"),
    ("unknown ci", ips, {"ci": "jackknife"}, "ci: must be one of normal, bootstrap"),
    ("level", ips, {"level": 1.5}, r"level: must be in \(0, 1\)"),
    ("n_boot", ips, {"ci": "bootstrap", "n_boot": 3}, "n_boot: must be an integer >= 10"),
    ("min_ess", ips, {"min_ess": -1}, "min_ess: must be a number >= 0"),
    ("all-zero target", snips, {"target_probs": [0.0] * 4}, "self-normalised estimators are undefined"),
]


@pytest.mark.parametrize("fn,change,match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_names_the_problem(fn, change, match):
    with pytest.raises(EstimatorError, match=match):
        fn(**{**LOG, **change})


@pytest.mark.parametrize("estimator", [ips, snips, dm, dr, sndr], ids=lambda f: f.__name__)
def test_an_argument_no_estimator_takes_is_a_type_error_naming_it(estimator):
    """One set of arrays serves every estimator, but a typo is never silently ignored."""
    with pytest.raises(TypeError, match=f"{estimator.__name__}\\(\\) got an unexpected keyword argument 'levl'"):
        estimator(**LOG, levl=0.9)
