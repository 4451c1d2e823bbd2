"""Running sums give the in-memory estimates, in any grouping of the rounds."""
import math

import numpy as np
import pytest

from bench_replay import synthetic
from replay.estimators import ESTIMATORS
from replay.logs import LoggedRounds
from replay.moments import Moments, PolicySums
from replay.sinks import ArraySink, SumSink


def arrays(n, k, seed):
    return synthetic(n, k, seed, logging_pmf=True)


def rounds_of(d, start, stop):
    n = stop - start
    sl = slice(start, stop)
    return LoggedRounds([f"e{i}" for i in range(start, stop)], [None] * n, [{}] * n, [[]] * n,
                        d["actions"][sl], d["propensities"][sl], d["rewards"][sl],
                        d["logging_pmf"][sl], np.full(n, d["q_hat"].shape[1]), [""] * n)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_sums_equal_the_array_estimators(name):
    d = arrays(5_000, 6, seed=3)
    sums = PolicySums()
    for part in np.array_split(np.arange(5_000), 7):
        sl = slice(part[0], part[-1] + 1)
        sums.add(d["rewards"][sl], d["propensities"][sl], d["target_pmf"][sl], d["q_hat"][sl],
                 d["actions"][sl], d["logging_pmf"][sl], offset=part[0])
    mine = sums.estimate(name)
    theirs = ESTIMATORS[name](**d)
    for field in ("value", "low", "high", "ess"):
        assert getattr(mine, field) == pytest.approx(getattr(theirs, field), rel=1e-12, abs=1e-12)
    assert mine.n == theirs.n == 5_000


def test_merge_is_exact_where_raw_power_sums_cancel():
    """Values near 1e8 with unit spread: Σz² − n·z̄² loses every digit, the pairwise
    update keeps the variance."""
    z = 1e8 + np.random.default_rng(1).standard_normal((10_000, 4))
    merged = Moments(4)
    for part in np.array_split(z, 9):
        m = Moments(4)
        m.add(part)
        merged.merge(m)
    u = np.array([1.0, 0, 0, 0])
    assert merged.variance(u) == pytest.approx(z[:, 0].var(ddof=1), rel=1e-9)


def test_sum_sink_rows_equal_array_sink_rows_and_shards_merge():
    d = arrays(3_000, 5, seed=8)
    cand = {"cand": d["target_pmf"]}
    whole, first, second, kept = SumSink(["cand"]), SumSink(["cand"]), SumSink(["cand"]), ArraySink(["cand"])
    for start in range(0, 3_000, 500):
        r = rounds_of(d, start, start + 500)
        pmfs = {"cand": cand["cand"][start:start + 500]}
        q = d["q_hat"][start:start + 500]
        whole.add(r, q, pmfs)
        kept.add(r, q, pmfs)
        (first if start < 1_500 else second).add(r, q, pmfs)
    first.merge(second)
    est = list(ESTIMATORS)
    expect = kept.rows(est, "normal", 0.95, 1000, 0)
    for got in (whole.rows(est, "normal", 0.95, 1000, 0), first.rows(est, "normal", 0.95, 1000, 0)):
        assert [(r["policy"], r["estimator"]) for r in got] == [(r["policy"], r["estimator"]) for r in expect]
        for a, b in zip(got, expect):
            for field in ("value", "low", "high", "ess"):
                assert a[field] == pytest.approx(b[field], rel=1e-11), (a, b)
            assert a["warnings"] == b["warnings"]
    assert whole.overlap() == kept.overlap() == first.overlap()


def test_too_small_a_sample_has_no_interval_and_says_so():
    sums = PolicySums()
    sums.add(np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([[1.0, 0.0], [0.0, 1.0]]),
             np.zeros((2, 2)), np.array([0, 1]))
    import warnings
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        est = sums.estimate("ips")
    assert est.value == 1.0 and math.isnan(est.low) and math.isnan(est.high)
    assert "under 30" in str(seen[-1].message)
