"""Fixtures every layer shares: a real redis-server process per test session (flushed
before each test), the example-style configuration, Flask apps/clients bound to that
Redis, and a simulated log written by the service's own DSJSON code."""
import pytest
import redis

from bandits import make_policy
from bandits.environments import LinearStream as LinearEnvironment
from replay.simulated import simulate_log
from service.app import create_app
from service.config import parse_config
from service.testing.redis_server import RedisServer

RECS_ITEMS = [{"id": f"item-{j}", "features": {"item": {"price": float(j % 7), "cat": f"c{j % 3}"}}}
              for j in range(30)]


def make_config(**service):
    """Two loops like config/example.toml, with short windows for tests."""
    raw = {"service": {"publish_events": 20, "publish_seconds": 0.5, **service},
           "models": {"check_latency": "1s"},  # the latency check has its own tests
           "loops": {
        "hero": {"actions": ["hero-a", "hero-b", "hero-c", "hero-d"],
                 "policy": {"type": "epsilon_greedy", "epsilon": 0.2, "model": "disjoint"},
                 "featurizer": {"context_dim": 8, "interaction_dim": 0, "action_id": False},
                 "reward_wait": "2s", "default_reward": 0.0, "seed": 1},
        "recs": {"policy": {"type": "linucb", "alpha": 0.5, "epsilon": 0.05},
                 "featurizer": {"context_dim": 16, "action_dim": 8, "interaction_dim": 8},
                 "reward_wait": "30s", "default_reward": -1.0, "seed": 2}}}
    return parse_config(raw)


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def r(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def config():
    return make_config()


@pytest.fixture
def app(config, r):
    return create_app(config, r)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def env():
    return LinearEnvironment(n_actions=5, n_features=6, seed=3)


@pytest.fixture(scope="session")
def events(env):
    """600 labelled decisions of an ε-greedy logger (ε = 0.3) that learns as it goes."""
    return simulate_log(env, make_policy({"type": "epsilon_greedy", "epsilon": 0.3}), 600, seed=1)
