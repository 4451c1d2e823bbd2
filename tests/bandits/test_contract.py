"""The contract every registered policy honours, run over each of them."""
import numpy as np
import pytest

from bandits import ConfigError, Feedback, SnapshotError, load_policy, make_policy, sample_index
from bandits.environments import LinearStream as LinearEnvironment

from .conftest import ACTIONS, CONTEXT

BAD_PARAMS = {
    "epsilon_greedy": [("epsilon", 0.0), ("epsilon", 1.5), ("decay", -1), ("model", "joint"),
                       ("l2", 0), ("min_epsilon", "x")],
    "linucb": [("alpha", -0.1), ("epsilon", 0), ("epsilon", float("nan")), ("model", "both"),
               ("l2", -1)],
    "lints": [("v", 0), ("n_draws", 0), ("n_draws", 2.5), ("epsilon", 2), ("seed", -1)],
    "vw": [("args", "--data x.txt"), ("args", "-q ab"), ("args", 3), ("interactions", "sa"),
           ("interactions", ["sx"]), ("args", "--no_such_option"), ("seed", -2), ("floor", 1.0)],
}


def _train(policy, rounds=60, seed=0):
    env = LinearEnvironment(seed=seed)
    for t in range(rounds):
        ctx, x = env.context()
        d = policy.decide(ctx, env.actions)
        k = sample_index(d.pmf, seed, f"e{t}")
        policy.learn([Feedback(ctx, env.actions, k, float(d.pmf[k]), env.reward(k, x))])
    return env


def _check_pmf(decision, k):
    assert decision.pmf.shape == (k,) and decision.scores.shape == (k,)
    assert decision.pmf.dtype == np.float64
    assert abs(decision.pmf.sum() - 1.0) < 1e-12
    assert (decision.pmf > 0).all()


def test_pmf_is_valid_before_and_after_learning(spec):
    policy = make_policy(spec)
    d = policy.decide(CONTEXT, ACTIONS)
    _check_pmf(d, len(ACTIONS))
    assert d.action_ids == tuple(a["id"] for a in ACTIONS)
    assert d.policy == spec["type"]
    env = _train(policy)
    _check_pmf(policy.decide(env.context()[0], env.actions), len(env.actions))
    _check_pmf(policy.decide(CONTEXT, ACTIONS[:1]), 1)


def test_context_free_use(spec):
    policy = make_policy(spec)
    for t in range(200):
        d = policy.decide({}, ["red", "green", "blue"])
        k = sample_index(d.pmf, 1, f"e{t}")
        policy.learn([Feedback({}, ["red", "green", "blue"], k, float(d.pmf[k]), float(k == 1))])
    d = policy.decide(None, ["red", "green", "blue"])
    _check_pmf(d, 3)
    assert int(np.argmax(d.pmf)) == 1


def test_snapshot_round_trip_gives_identical_pmfs(spec):
    policy = make_policy(spec)
    env = _train(policy)
    blob = policy.to_bytes()
    assert isinstance(blob, bytes) and blob[:2] == b"PK"  # a zip archive, not a pickle
    for clone in (type(policy).from_bytes(blob), load_policy(blob)):
        for _ in range(5):
            ctx, _ = env.context()
            assert np.array_equal(clone.decide(ctx, env.actions).pmf, policy.decide(ctx, env.actions).pmf)
        assert clone.get_params() == policy.get_params()


def test_reloaded_policy_keeps_learning_identically(spec):
    policy = make_policy(spec)
    _train(policy, rounds=30)
    clone = load_policy(policy.to_bytes())
    env_a, env_b = _train(policy, rounds=30, seed=5), _train(clone, rounds=30, seed=5)
    ctx, _ = env_a.context()
    assert np.array_equal(policy.decide(ctx, env_a.actions).pmf, clone.decide(ctx, env_b.actions).pmf)


def test_same_seed_same_choices(spec):
    choices = []
    for _ in range(2):
        policy = make_policy(spec)
        env = LinearEnvironment(seed=3)
        run = []
        for t in range(80):
            ctx, x = env.context()
            d = policy.decide(ctx, env.actions)
            k = sample_index(d.pmf, 9, f"e{t}")
            policy.learn([Feedback(ctx, env.actions, k, float(d.pmf[k]), env.reward(k, x))])
            run.append(k)
        choices.append(run)
    assert choices[0] == choices[1]


def test_bad_hyperparameters_raise_naming_the_key(spec):
    for key, value in BAD_PARAMS[spec["type"]]:
        with pytest.raises(ConfigError) as info:
            make_policy(dict(spec, **{key: value}))
        assert info.value.key == key, (key, value, str(info.value))
    with pytest.raises(ConfigError, match="no_such_param: unknown parameter"):
        make_policy(dict(spec, no_such_param=1))


def test_decide_does_not_mutate_or_learn(spec):
    import copy

    policy = make_policy(spec)
    _train(policy, rounds=20)
    before = policy.to_bytes()
    ctx, actions = copy.deepcopy(CONTEXT), copy.deepcopy(ACTIONS)
    first = policy.decide(ctx, actions).pmf
    assert ctx == CONTEXT and actions == ACTIONS
    assert np.array_equal(policy.decide(ctx, actions).pmf, first)
    assert load_policy(policy.to_bytes()).get_params() == load_policy(before).get_params()


def test_bad_feedback_is_refused_before_learning(spec):
    policy = make_policy(spec)
    snapshot = policy.to_bytes()
    with pytest.raises(ValueError, match=r"chosen|propensity|reward|missing"):
        policy.learn([{"context": {}, "actions": ["a", "b"], "chosen": 5, "propensity": 0.5, "reward": 1}])
    with pytest.raises(ValueError, match="propensity"):
        policy.learn([{"actions": ["a"], "chosen": 0, "propensity": 0.0, "reward": 1.0}])
    with pytest.raises(ValueError, match=r"feedback\[0\]\.context: must be an object"):
        policy.learn([{"context": ["x"], "actions": ["a"], "chosen": 0, "propensity": 1.0, "reward": 1.0}])
    with pytest.raises(ValueError, match=r"context\.u\.x: must be a finite number"):
        policy.learn([{"context": {"u": {"x": float("nan")}}, "actions": ["a"], "chosen": 0,
                       "propensity": 1.0, "reward": 1.0}])
    with pytest.raises(ValueError, match="missing reward"):
        policy.learn([{"actions": ["a"], "chosen": 0, "propensity": 1.0}])
    assert np.array_equal(load_policy(snapshot).decide({}, ["a", "b"]).pmf, policy.decide({}, ["a", "b"]).pmf)


def test_values_too_large_to_learn_from_are_refused_and_the_batch_learns_nothing(spec):
    """Feature values or rewards past 1e15 would overflow a linear model's statistics
    (three events with 1e299 turned every score to NaN): refused, whole batch."""
    policy = make_policy(spec)
    _train(policy)
    snapshot = policy.to_bytes()
    good = {"context": {"u": {"x": 0.5}}, "actions": ["a", "b"], "chosen": 0, "propensity": 0.5, "reward": 1.0}
    bad_feature = {**good, "context": {"u": {"x": 1e299, "y": -1e299}}}
    bad_reward = {**good, "reward": 1e299}
    with pytest.raises(ValueError, match=r"feedback\[1\]\.context\.u\.x|context\.u\.x: must be a finite number of magnitude"):
        policy.learn([good, bad_feature])
    with pytest.raises(ValueError, match=r"reward: must be a finite number of magnitude at most 1e\+15"):
        policy.learn([good, bad_reward])
    reloaded = load_policy(snapshot)
    for ctx in ({"u": {"x": 0.5}}, CONTEXT):
        d, expected = policy.decide(ctx, ACTIONS), reloaded.decide(ctx, ACTIONS)
        assert np.array_equal(d.pmf, expected.pmf) and np.array_equal(d.scores, expected.scores)
        assert np.isfinite(d.scores).all()


def test_snapshot_errors():
    with pytest.raises(SnapshotError, match="not a cbserve policy snapshot"):
        load_policy(b"not a zip")
    blob = make_policy({"type": "linucb"}).to_bytes()
    from bandits import EpsilonGreedy
    with pytest.raises(SnapshotError, match="holds a 'linucb' policy"):
        EpsilonGreedy.from_bytes(blob)
    from bandits.snapshot import pack, unpack
    meta, arrays = unpack(blob)
    with pytest.raises(SnapshotError, match="corrupt linucb snapshot"):
        load_policy(pack("linucb", dict(meta["params"], bogus=1), meta["state"], arrays))
    with pytest.raises(SnapshotError, match="corrupt linucb snapshot"):
        load_policy(pack("linucb", meta["params"], meta["state"], {"A": arrays["A"]}))
