"""One local Ray (2 CPUs) for the test session: started by the first test that asks
for it, stopped after the last one, so the rest of the suite runs without it. The Ray
tests are skipped, saying why, when Ray is not installed. A test module takes both
fixtures: ``from tests.ray_local import ray_local, ray_stops_after_its_last_test``."""
import sys

import pytest


@pytest.fixture(scope="session")
def ray_local():
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (or '.[dev]')")
    from replay.ray_map import connected

    with connected(num_cpus=2) as ray:
        yield ray


@pytest.fixture(autouse=True)
def ray_stops_after_its_last_test(request):
    yield
    items = request.session.items
    if "ray_local" not in request.fixturenames or request.node not in items:
        return
    later = items[items.index(request.node) + 1:]
    if sys.modules.get("ray") and not any("ray_local" in getattr(i, "fixturenames", ()) for i in later):
        sys.modules["ray"].shutdown()
