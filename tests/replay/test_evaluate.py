"""evaluate(): the logger's IPS is the mean reward, candidates land near their true
values, the reward model is cross-fitted, replay learns as it goes, bad rounds and bad
candidate files are reported."""
import copy

import numpy as np
import pytest

from bandits import make_policy
from replay import LOGGING, CandidateError, ReplayError, candidate_from_mapping, evaluate, load_candidate
from replay.sources import open_log
from replay.reward_model import CrossFitRidge
from replay.simulated import simulate_log, true_value, write_dsjson


@pytest.fixture(scope="module")
def big_log(tmp_path_factory, env):
    """4,000 rounds of a uniform-ish (ε = 1) logger: every action has propensity 0.2."""
    events = simulate_log(env, make_policy({"type": "epsilon_greedy", "epsilon": 1.0}), 4000, seed=5)
    path = str(tmp_path_factory.mktemp("logs") / "uniform.json.gz")
    write_dsjson(events, path)
    return path, events


def rows_of(result, policy):
    return {r["estimator"]: r for r in result.rows if r["policy"] == policy}


def test_logging_policy_ips_is_the_mean_logged_reward(tmp_path, events):
    path = str(tmp_path / "log.json")
    write_dsjson(events, path)
    result = evaluate(open_log(path), [])
    rewards = np.array([-e["_label_cost"] for e in events])
    assert rows_of(result, LOGGING)["ips"]["value"] == rewards.mean()
    assert result.rounds == 600 and result.train_rounds == 0
    assert [r["estimator"] for r in result.rows] == ["ips", "snips", "dm", "dr", "sndr"]


def test_trained_candidates_are_estimated_near_their_true_value(big_log, env):
    path, _ = big_log
    cands = [candidate_from_mapping({"name": "linucb", "policy": {"type": "linucb", "alpha": 0.3}}),
             candidate_from_mapping({"name": "greedy", "policy": {"type": "epsilon_greedy", "epsilon": 0.05}})]
    result = evaluate(open_log(path), cands, train_fraction=0.5)
    assert (result.train_rounds, result.rounds) == (2000, 2000)
    for cand in cands:
        truth = true_value(env, cand.policy, contexts=4000)
        rows = rows_of(result, cand.name)
        for est in ("snips", "dr"):
            # fixed seeds; the 95% interval contains the Monte Carlo truth (MC error ~0.01)
            assert rows[est]["low"] - 0.02 <= truth <= rows[est]["high"] + 0.02, (cand.name, est, truth, rows[est])
        assert rows["dr"]["high"] - rows["dr"]["low"] < rows["ips"]["high"] - rows["ips"]["low"]
    logger = rows_of(result, LOGGING)["dr"]["value"]
    assert rows_of(result, "linucb")["dr"]["value"] > logger + 0.3  # learning beats uniform here


def test_reward_model_is_cross_fitted():
    """Fold 0's predictions come from the ridge solution on fold 1 alone (closed form)."""
    rng = np.random.default_rng(0)
    from replay.logs import build_rounds

    rows = []
    for i in range(40):
        ctx = {"u": {"x": float(rng.normal()), "y": float(rng.normal())}}
        actions = [{"id": f"a{k}", "features": {"i": {"q": float(k)}}} for k in range(3)]
        rows.append((f"e{i}", None, ctx, actions, int(rng.integers(3)), 1 / 3, float(rng.normal()),
                     [1, 2, 3], [1 / 3] * 3))
    rounds, _ = build_rounds(rows, [str(i) for i in range(40)])
    model = CrossFitRidge({"context_dim": 8, "action_dim": 4, "interaction_dim": 4}, folds=2, l2=0.5)
    model.add(rounds, np.arange(40))
    q = model.predict(rounds, np.arange(40), 3)
    X = [model.rows(c, a) for c, a in zip(rounds.contexts, rounds.actions)]
    odd = [j for j in range(40) if j % 2 == 1]
    Xc = np.stack([X[j][rounds.chosen[j]] for j in odd])
    theta = np.linalg.solve(0.5 * np.eye(Xc.shape[1]) + Xc.T @ Xc, Xc.T @ rounds.rewards[odd])
    np.testing.assert_allclose(q[0], X[0] @ theta, atol=1e-9)
    np.testing.assert_allclose(q[2], X[2] @ theta, atol=1e-9)
    assert not np.allclose(q[1], X[1] @ theta)


def test_replay_learns_as_it_goes(big_log, env):
    path, _ = big_log
    cand = candidate_from_mapping({"name": "eg-online", "learn": "replay",
                                   "policy": {"type": "epsilon_greedy", "epsilon": 0.1}})
    result = evaluate(open_log(path), [cand], estimators=("ips",))
    row = rows_of(result, "eg-online")["replay"]
    # uniform logger: c = 0.2, so about 0.2 * 4000 rounds are accepted (binomial sd ~25)
    assert 700 <= row["ess"] <= 900
    assert row["value"] > rows_of(result, LOGGING)["ips"]["value"] + 0.2
    assert cand.policy.n_learned == row["ess"]  # it learned from exactly the accepted rounds


def test_rounds_a_policy_rejects_are_dropped_and_reported(tmp_path, events):
    bad = copy.deepcopy(events[:20])
    bad[3]["c"]["user"] = {"nested": {"too": "deep"}}
    path = str(tmp_path / "log.json")
    write_dsjson(bad, path)
    result = evaluate(open_log(path), [candidate_from_mapping({"policy": {"type": "linucb"}})])
    assert result.rounds == 19
    assert result.dropped[0][0] == "line 4" and "context" in result.dropped[0][1]


def test_candidate_from_a_snapshot_and_from_redis(tmp_path, events):
    policy = make_policy({"type": "linucb", "alpha": 0.2})
    policy.learn([{"context": {"user": {"f0": 1.0}}, "actions": ["a0", "a1"], "chosen": 0,
                   "propensity": 0.5, "reward": 1.0}])
    (tmp_path / "m.bin").write_bytes(policy.to_bytes())
    (tmp_path / "snap.toml").write_text('snapshot = "m.bin"\n')
    cand = load_candidate(str(tmp_path / "snap.toml"))
    assert cand.name == "snap" and cand.policy.to_bytes() == policy.to_bytes()
    (tmp_path / "v.toml").write_text("model_version = 3\n")
    cand = load_candidate(str(tmp_path / "v.toml"), lambda v: policy.to_bytes() if v == 3 else None)
    assert cand.policy.alpha == 0.2


BAD_FILES = [
    ('policy = { type = "linucb" }\nalpah = 1\n', "alpah: unknown key"),
    ('policy = { type = "linucb", alpah = 1 }\n', "policy: alpah: unknown parameter"),
    ('learn = "online"\npolicy = { type = "linucb" }\n', "learn: must be one of frozen, replay"),
    ('name = "x"\n', "give exactly one of policy, snapshot, model_version"),
    ('policy = { type = "linucb" }\nsnapshot = "m.bin"\n', "(got policy, snapshot)"),
    ('snapshot = "missing.bin"\n', "snapshot: cannot read"),
    ("model_version = 2\n", "needs --log to be the loop's Redis URL"),
    ("model_version = true\n", "model_version: must be a version number >= 1, got the boolean true"),
    ('learn = 1\npolicy = { type = "linucb" }\n', "learn: must be one of frozen, replay, got 1"),
    ("policy = [1\n", "invalid TOML"),
]


@pytest.mark.parametrize("text,match", BAD_FILES)
def test_bad_candidate_files_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "cand.toml"
    path.write_text(text)
    with pytest.raises(CandidateError, match=r"--policy .*cand\.toml: .*" + match.replace("(", r"\(").replace(")", r"\)")):
        load_candidate(str(path))


def test_bad_evaluation_settings(tmp_path, events):
    path = str(tmp_path / "log.json")
    write_dsjson(events[:10], path)
    with pytest.raises(ReplayError, match="estimators: unknown magic"):
        evaluate(open_log(path), [], estimators=("ips", "magic"))
    with pytest.raises(ReplayError, match="train_fraction"):
        evaluate(open_log(path), [], train_fraction=1.5)
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    with pytest.raises(ReplayError, match="no rewarded rounds"):
        evaluate(open_log(str(empty)), [])
