"""The figures the soak and benchmark scripts compute to explain a slow run."""
from service.testing import hostcpu

import soak


def test_per_second_p99_buckets_by_due_time():
    due = [100.1, 100.5, 101.2, 101.3, 103.9]
    ms = [1.0, 2.0, 30.0, 40.0, 5.0]
    assert soak.per_second_p99(due, ms) == [2.0, 40.0, 5.0]  # second 2 had nothing due
    assert soak.per_second_p99([], []) == []


def test_steal_share_is_steal_over_all_cpu_time():
    before = [100, 0, 50, 800, 0, 0, 0, 50, 0, 0]
    after = [160, 0, 70, 860, 0, 0, 0, 70, 0, 0]  # +60 user, +20 system, +60 idle, +20 steal
    assert hostcpu.steal_share(before, after) == 0.125
    assert hostcpu.steal_share(None, after) is None
