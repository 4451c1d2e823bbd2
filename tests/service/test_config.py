"""Configuration: the example file loads; a bad file names the key and the problem."""
import copy
import os

import pytest

from service.cli import main as cbserve
from service.config import duration, load_config, parse_config
from service.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = {"loops": {"recs": {"policy": {"type": "linucb"}}}}


def test_example_config_loads_with_documented_defaults():
    cfg = load_config(os.path.join(ROOT, "config", "example.toml"))
    hero, recs = cfg.loops["homepage-hero"], cfg.loops["recs"]
    assert [a["id"] for a in hero.actions] == ["hero-a", "hero-b", "hero-c", "hero-d"]
    assert hero.reward_wait == 600 and hero.retention == 7 * 86400 and recs.actions is None
    assert recs.new_policy().alpha == 0.5
    minimal = parse_config(BASE)
    assert minimal.max_actions == 1000 and minimal.loops["recs"].reward_wait == 600
    assert minimal.loops["recs"].default_reward == 0.0
    assert minimal.read_timeout == 10.0 and minimal.allow_anonymous is False


@pytest.mark.parametrize("text,seconds", [(30, 30.0), (0.5, 0.5), ("250ms", 0.25), ("10m", 600.0),
                                          ("2h", 7200.0), ("7d", 604800.0), (" 1.5 s ", 1.5)])
def test_durations(text, seconds):
    assert duration(text, "k") == seconds


def _with(path, value):
    raw = copy.deepcopy(BASE)
    node = raw
    *parents, last = path
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


BAD = [
    (_with(("colour",), 1), "colour: unknown key"),
    ({"loops": {}}, "loops: at least one"),
    (_with(("service", "redis_url"), "redis://x"), "service.redis_url: secrets come from the environment"),
    (_with(("service", "max_actions"), 0), "service.max_actions: must be an integer >= 1"),
    (_with(("service", "publish_seconds"), "soon"), "service.publish_seconds: must be a positive duration"),
    (_with(("loops", "recs", "reward_wait"), -1), "loops.recs.reward_wait: must be a positive duration"),
    (_with(("loops", "recs", "retention"), "1s"), "loops.recs.retention: must be at least reward_wait"),
    (_with(("loops", "recs", "polcy"), {}), "loops.recs.polcy: unknown key"),
    (_with(("loops", "recs", "policy"), {"type": "linucbb"}), "loops.recs.policy.type: unknown policy type"),
    (_with(("loops", "recs", "policy"), {"type": "linucb", "alpah": 1}), "loops.recs.policy.alpah: unknown parameter"),
    (_with(("loops", "recs", "policy"), {"type": "linucb", "alpha": -1}), "loops.recs.policy.alpha"),
    (_with(("loops", "recs", "featurizer"), {"context_dimm": 8}), "loops.recs.featurizer.context_dimm: unknown key"),
    (_with(("loops", "recs", "featurizer"), {"context_dim": 0}), "loops.recs.featurizer.context_dim"),
    (_with(("loops", "recs", "actions"), ["a", "a"]), "loops.recs.actions[1].id: duplicate"),
    (_with(("loops", "recs", "actions"), []), "loops.recs.actions: must be a non-empty list"),
    (_with(("loops", "recs", "default_reward"), "zero"), "loops.recs.default_reward: must be a finite number"),
    (_with(("loops", "recs", "default_reward"), 1e20), "loops.recs.default_reward: must be a finite number of magnitude at most 1e+15"),
    (_with(("loops", "recs", "policy"), {"type": "epsilon_greedy", "model": "disjoint"}),
     "loops.recs.actions: required with policy.model = 'disjoint'"),
    (_with(("loops", "recs", "seed"), -3), "loops.recs.seed: must be an integer >= 0"),
    ({"loops": {"bad name{}": {}}}, "loops.bad name{}: loop names"),
    # values named in TOML's and JSON's terms, never Python's (True, None, NoneType)
    (_with(("service", "max_actions"), True), "service.max_actions: must be an integer >= 1, got the boolean true"),
    (_with(("service", "data_dir"), ["a"]), "service.data_dir: must be a non-empty string, got a list"),
    (_with(("service", "publish_seconds"), False), "service.publish_seconds: must be a positive duration "
                                                   "(seconds, or e.g. '30s', '10m', '2h', '7d'), got the boolean false"),
    (_with(("service",), "x"), "service: must be a table, got the string 'x'"),
    (_with(("loops", "recs", "policy"), {"type": "linucb", "alpha": True}),
     "loops.recs.policy.alpha: must be a finite number, got the boolean true"),
    (_with(("loops", "recs", "policy"), {"type": 3}), "loops.recs.policy.type: must be a string, got 3"),
    (_with(("loops", "recs", "actions"), [{"id": "a", "feature": {"i": {"p": 1}}}, "b"]),
     "loops.recs.actions[0].feature: unknown key (allowed: id, features)"),
    (_with(("service", "allow_anonymous"), "yes"), "service.allow_anonymous: must be true or false, got the string 'yes'"),
    (_with(("service", "read_timeout"), 0), "service.read_timeout: must be a positive duration"),
]


@pytest.mark.parametrize("raw,message", BAD, ids=[m.split(":")[0] + "-" + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_configuration_names_the_key(raw, message):
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert message in str(info.value)


def test_cli_reports_a_bad_file_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[loops.recs]\nreward_wait = "soon"\n')
    assert cbserve(["learner", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "loops.recs.reward_wait" in err and "Traceback" not in err
    path.write_text("[loops.recs\n")
    assert cbserve(["export", "--config", str(path), "--loop", "recs", "-o", "x"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
