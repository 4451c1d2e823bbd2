"""replay.ray_map on a real local Ray (2 CPUs, one per test session): results in the
order of the items, progress as tasks finish, a task's exception raised again here;
and the map without Ray, which importing replay never needs."""
import os
import subprocess
import sys
import time

import pytest

from replay.ray_map import RayNotInstalled, TaskFailed, local_map, mapper, ray_map
from tests.ray_local import ray_local, ray_stops_after_its_last_test  # noqa: F401

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def nap_then_square(x):
    """Later items finish first: the order of the results is not the order of finishing."""
    time.sleep(max(0.0, 0.05 * (5 - x)))
    return x * x


class Unpicklable(Exception):
    def __init__(self, what):
        super().__init__(what)
        self.handle = lambda: what  # a lambda does not pickle


def fail_on_three(x):
    if x == 3:
        raise KeyError(f"item {x}")
    return x


def fail_unpicklably(x):
    raise Unpicklable(f"item {x}")


def test_results_come_in_the_order_of_the_items(ray_local):
    assert ray_map(nap_then_square, range(6)) == [0, 1, 4, 9, 16, 25]
    assert ray_map(nap_then_square, []) == []
    assert ray_map(nap_then_square, [2], address="local") == [4]  # the running Ray


def test_progress_is_called_once_per_finished_task(ray_local):
    calls = []
    def progress(done, total):
        calls.append((done, total))

    assert ray_map(abs, [-3, 2, -1], progress=progress) == [3, 2, 1]
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_a_task_exception_is_raised_with_its_type_message_and_remote_traceback(ray_local):
    with pytest.raises(ValueError, match="invalid literal for int") as info:
        ray_map(int, ["1", "x", "3"])
    assert "in a Ray task" in info.value.__notes__[0]
    with pytest.raises(KeyError, match="item 3") as info:
        ray_map(fail_on_three, range(5))
    assert "fail_on_three" in info.value.__notes__[0]
    with pytest.raises(TaskFailed, match="Unpicklable: item 0"):
        ray_map(fail_unpicklably, [0])


def test_the_ray_and_local_maps_give_the_same_results(ray_local):
    items = [-2.5, 0.0, 7.25, 3]
    for run in (mapper(None), mapper("local")):
        assert run(nap_then_square, items) == [x * x for x in items]
    assert mapper(None) is local_map


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is absent
    with pytest.raises(RayNotInstalled, match=r"pip install 'cbserve\[ray\]'"):
        ray_map(abs, [1])
    assert local_map(abs, [-1]) == [1]


def test_importing_replay_never_imports_ray():
    code = "import sys, replay, replay.ray_map; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_ray_started_for_one_map_is_shut_down_after_it():
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (or '.[dev]')")
    code = ("import ray; from replay.ray_map import ray_map; "
            "print(ray_map(abs, [-1, -2], num_cpus=1), ray.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[1, 2] False"
