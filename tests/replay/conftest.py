"""Simulated logs written by the service's own DSJSON code, and the real-Redis fixtures
of the service tests."""
import pytest

from bandits import make_policy
from bandits.environments import LinearStream as LinearEnvironment
from replay.simulated import simulate_log
from tests.service.conftest import app, client, config, r, redis_server  # noqa: F401


@pytest.fixture(scope="session")
def env():
    return LinearEnvironment(n_actions=5, n_features=6, seed=3)


@pytest.fixture(scope="session")
def events(env):
    """600 labelled decisions of an ε-greedy logger (ε = 0.3) that learns as it goes."""
    return simulate_log(env, make_policy({"type": "epsilon_greedy", "epsilon": 0.3}), 600, seed=1)
