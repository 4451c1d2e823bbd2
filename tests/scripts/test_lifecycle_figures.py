"""The pieces of scripts/lifecycle.py that need no service: its configuration is one the
service accepts, and the figures it derives from audit entries and gate runs."""
import tomllib

from bandits.environments import LogisticEnv
from service.config import parse_config

import lifecycle
import lifecycle_steps as steps


def test_the_configuration_has_a_gate_loop_per_seed_with_both_challengers():
    cfg = parse_config(tomllib.loads(lifecycle.config([3, 4], 2000, "1s")))
    assert sorted(cfg.loops) == ["challenged", "deploy", "gate-3", "gate-4", "plain"]
    gate = cfg.loops["gate-3"]
    assert [c.name for c in gate.challengers] == [steps.BETTER, steps.WORSE]
    assert gate.promotion["mode"] == "auto" and gate.evaluation["window"] == 2000
    assert [a["id"] for a in gate.actions] == [a["id"] for a in LogisticEnv(seed=3, **steps.ENV).actions]
    assert gate.seed == 3 and not cfg.loops["plain"].challengers


def test_toml_values():
    assert steps.toml({"a": [1, 2.5], "b c": {"d": True, "e": "x"}}) == \
        '{a = [1, 2.5], "b c" = {d = true, e = "x"}}'


def test_nearest_rank_quantiles():
    values = [0.1 * i for i in range(1, 21)]
    assert lifecycle.pct(values, 0.99) == values[-1]  # 20 values: p99 is the largest
    assert lifecycle.pct(values, 0.5) == values[9]
    assert lifecycle.pct([], 0.5) is None


def test_the_interval_a_challenger_was_promoted_on_is_read_from_its_audit_entry():
    entry = {"action": "promote", "version": 7, "challenger": "linucb",
             "figures": {"challenger": "linucb", "gate": {"passes": True},
                         "figures": {"dr": {"value": 0.7, "low": 0.6, "high": 0.8},
                                     "champion": {"value": 0.5}, "n": 1500, "ess": 210.0}}}
    assert steps.promoted_interval(entry) == (0.7, 0.6, 0.8)
    assert steps.promoted_champion(entry) == (0.5, 1500, 210.0)
    assert steps.challenger_of(entry) == "linucb"
    served = [(6, 0.0, 0.5), (7, 1.0, 0.7), (7, 0.0, 0.7), (8, 1.0, 0.9), (7, 1.0, 0.7)]
    run = steps.GateRun(0, LogisticEnv(seed=0, **steps.ENV), promoted=entry, served=served)
    assert run.post == [(1.0, 0.7), (0.0, 0.7), (1.0, 0.7)] and run.line == [(1.0, 0.9)]
    assert run.promoted_at == 1
    assert lifecycle._covered(run) is True  # mean 2/3 in [0.6, 0.8]
    run.served = [(7, 1.0, 0.9)] * 3
    assert lifecycle._covered(run) is False
    assert lifecycle._covered(steps.GateRun(1, run.env)) is None  # nothing promoted


def test_the_better_challenger_is_truly_better_by_a_tenth_in_every_seed():
    for seed in range(20):
        truth = steps.truth(LogisticEnv(seed=seed, **steps.ENV), rounds=1000)
        assert truth["optimal"] - truth["champion"] >= 0.1
        assert truth["uniform"] < truth["champion"]
