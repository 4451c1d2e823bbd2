"""One local Ray (2 CPUs) for the whole test session, started by the first test that
asks for it; the Ray tests are skipped, saying why, when Ray is not installed."""
import pytest


@pytest.fixture(scope="session")
def ray_local():
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (or '.[dev]')")
    from replay.ray_map import connected

    with connected(num_cpus=2) as ray:
        yield ray
