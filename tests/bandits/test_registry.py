"""Registry: built-in names, plugins by module path, errors that name the key."""
import numpy as np
import pytest

from bandits import BUILTINS, ConfigError, LinUCB, load_policy, make_policy

PLUGIN = "tests.bandits.plugin_policy:Favourite"


def test_builtin_names():
    assert sorted(BUILTINS) == ["epsilon_greedy", "lints", "linucb", "qnetwork", "vw"]
    assert isinstance(make_policy({"type": "linucb", "alpha": 2.0}), LinUCB)


def test_featurizer_from_argument_or_spec():
    p = make_policy({"type": "linucb"}, featurizer={"context_dim": 8})
    assert p.featurizer.context_dim == 8
    q = make_policy({"type": "linucb", "featurizer": {"context_dim": 4}}, featurizer={"context_dim": 8})
    assert q.featurizer.context_dim == 4


def test_plugin_policy_loads_decides_learns_and_snapshots():
    p = make_policy({"type": PLUGIN, "favourite": "b", "weight": 0.7})
    d = p.decide({}, ["a", "b", "c"])
    assert d.pmf.tolist() == pytest.approx([0.15, 0.7, 0.15])
    p.learn([{"actions": ["a", "b"], "chosen": 1, "propensity": 0.7, "reward": 2.0}])
    clone = load_policy(p.to_bytes())
    assert clone.rewards_ == 2.0 and clone.favourite == "b"
    assert np.array_equal(clone.decide({}, ["a", "b"]).pmf, p.decide({}, ["a", "b"]).pmf)


@pytest.mark.parametrize("spec, key, match", [
    ({"type": "ucb"}, "type", r"unknown policy type 'ucb' \(allowed: epsilon_greedy, lints, linucb, qnetwork, vw"),
    ({"alpha": 1}, "type", "type: missing"),
    ({"type": 7}, "type", "must be a string"),
    ({"type": "no.such.module:Policy"}, "type", "cannot load plugin"),
    ({"type": "bandits.errors:ConfigError"}, "type", "does not implement the policy interface"),
    ({"type": "linucb", "featurizer": {"bogus": 1}}, "featurizer.bogus", "unknown key"),
    ({"type": PLUGIN, "weight": 2}, PLUGIN, "bad parameters: weight must be in"),
    ({"type": PLUGIN, "colour": 2}, "colour", r"unknown parameter .* \(allowed: favourite, weight\)"),
])
def test_errors_name_the_key(spec, key, match):
    with pytest.raises(ConfigError, match=match) as info:
        make_policy(spec)
    assert info.value.key == key


def test_spec_must_be_a_mapping():
    with pytest.raises(ConfigError, match="policy: must be a mapping"):
        make_policy(["linucb"])
