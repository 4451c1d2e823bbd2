"""Shared fixtures: one spec per policy variant, so contract tests cover all of them."""
import pytest

from bandits import BUILTINS

#: Every registered policy, in each model variant it has.
POLICY_SPECS = [
    {"type": "epsilon_greedy", "epsilon": 0.1},
    {"type": "epsilon_greedy", "epsilon": 0.1, "model": "disjoint"},
    {"type": "linucb", "alpha": 1.0},
    {"type": "linucb", "alpha": 1.0, "model": "disjoint"},
    {"type": "lints", "v": 0.5},
    {"type": "lints", "v": 0.5, "model": "disjoint"},
    {"type": "epsilon_greedy", "epsilon": 0.1, "model": "disjoint", "window": 400},
    {"type": "linucb", "alpha": 1.0, "window": 400},
    {"type": "lints", "v": 0.5, "model": "disjoint", "window": 400},
    {"type": "vw", "args": "--epsilon 0.1"},
    {"type": "vw", "args": "--squarecb"},
]
#: Covered by their own test module (a Q-network needs a model file and fixed actions).
OWN_TESTS = {"qnetwork"}
assert {s["type"] for s in POLICY_SPECS} == set(BUILTINS) - OWN_TESTS, \
    "a registered policy has no contract spec"


def spec_id(spec):
    return "-".join(str(v) for v in spec.values())


@pytest.fixture(params=POLICY_SPECS, ids=spec_id)
def spec(request):
    return dict(request.param)


CONTEXT = {"user": {"country": "FR", "age": 31, "tags": ["a", "b"]}, "device": {"os": "ios"}}
ACTIONS = [{"id": f"item-{k}", "features": {"item": {"cat": f"c{k % 3}", "price": 1.5 * k}}}
           for k in range(5)]
