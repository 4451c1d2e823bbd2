"""QNetworkPolicy: argmax Q with propensity 1−ε+ε/K, state encoding, snapshots, bad models;
fitted Q-iteration beats every bandit on the engagement environment."""
import numpy as np
import pytest

from bandits import ConfigError, FeatureError, load_policy, make_policy, sample_index
from bandits.environments.engagement import ACTIONS, EngagementEnv
from bandits.offline.fitted_q import fitted_q
from bandits.offline.onnx_mlp import mlp_onnx
from bandits.state import StateEncoder

IDS = ["a", "b", "c"]
STATE = {"features": ["user.x"], "history": 1, "step": True}   # d = 1 + 1 + (3 + 1) = 6
W = np.array([[1.0, -1.0, 0.0],      # user.x
              [0.0, 0.0, 0.5],       # step
              [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],   # last action one-hot
              [0.0, 2.0, 0.0]])      # last reward
B = np.array([0.0, 0.0, 0.1])


def write_model(path, layers=((W, B),)):
    path.write_bytes(mlp_onnx(list(layers)))
    return str(path)


@pytest.fixture
def model(tmp_path):
    return write_model(tmp_path / "q.onnx")


def spec(model, **extra):
    return {"type": "qnetwork", "model": model, "action_ids": IDS, "state": STATE,
            "epsilon": 0.2, **extra}


def ctx(x, step=0, history=()):
    return {"user": {"x": x}, "_session": {"step": step, "history": list(history)}}


def test_argmax_q_with_exact_propensities(model):
    policy = make_policy(spec(model))
    d = policy.decide(ctx(2.0), IDS)                     # Q = [2, -2, 0.1]
    np.testing.assert_allclose(d.scores, [2.0, -2.0, 0.1], atol=1e-6)
    np.testing.assert_allclose(d.pmf, [1 - 0.2 + 0.2 / 3, 0.2 / 3, 0.2 / 3])
    # the session state moves the argmax: last reward 1 adds 2 to b; step 4 adds 2 to c
    d = policy.decide(ctx(0.0, 1, [{"action": "c", "reward": 1.0}]), IDS)
    assert d.pmf.argmax() == 1 and d.pmf[1] == pytest.approx(1 - 0.2 + 0.2 / 3)
    d = policy.decide(ctx(0.0, 4), IDS)
    assert d.pmf.argmax() == 2
    # a subset of the outputs (e.g. with exclude): Q of those actions only, in request order
    d = policy.decide(ctx(-1.0), ["c", "b"])
    np.testing.assert_allclose(d.scores, [0.1, 1.0], atol=1e-6)
    np.testing.assert_allclose(d.pmf, [0.1, 0.9])


def test_snapshot_embeds_the_network(tmp_path, model):
    policy = make_policy(spec(model))
    blob = policy.to_bytes()
    (tmp_path / "q.onnx").unlink()               # a worker without the file still loads it
    again = load_policy(blob)
    for x in (-1.0, 0.3, 2.0):
        np.testing.assert_array_equal(again.decide(ctx(x), IDS).pmf, policy.decide(ctx(x), IDS).pmf)
    policy.learn([{"context": ctx(1.0), "actions": IDS, "chosen": 0, "propensity": 0.5,
                   "reward": 1.0}])           # trained offline: learning changes nothing
    assert policy.to_bytes() == blob


def test_bad_models_and_inputs_fail_clearly(tmp_path, model):
    cases = {"missing": (spec(str(tmp_path / "nope.onnx")), "cannot read")}
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    cases["junk"] = (spec(str(tmp_path / "junk.onnx")), "not a loadable ONNX model")
    wide = write_model(tmp_path / "wide.onnx", [(np.zeros((7, 3)), np.zeros(3))])
    cases["input"] = (spec(wide), r"state encoding gives \(batch, 6\)")
    narrow = write_model(tmp_path / "narrow.onnx", [(np.zeros((6, 2)), np.zeros(2))])
    cases["output"] = (spec(narrow), r"expected \(1, 3\): one Q-value per action")
    for name, (bad, message) in cases.items():
        with pytest.raises(ConfigError, match=message) as err:
            make_policy(bad)
        assert err.value.key == "model", name
    with pytest.raises(ConfigError, match="action_ids"):
        make_policy({"type": "qnetwork", "model": model})
    with pytest.raises(ConfigError, match="state.history"):
        make_policy(spec(model, state={"history": -1}))
    policy = make_policy(spec(model))
    with pytest.raises(FeatureError, match="unknown action 'z'"):
        policy.decide(ctx(0.0), ["a", "z"])
    with pytest.raises(FeatureError, match="context.user.x"):
        policy.decide({"user": {"x": "high"}}, IDS)


def _rollouts(policy, episodes, seed, learn, collect=None):
    """Mean return per episode in-process (the service's session state, emulated)."""
    env, returns = EngagementEnv(seed=seed), []
    for ep in range(episodes):
        context, done, total, history, t = env.reset(), False, 0.0, [], 0
        while not done:
            c = {**context, "_session": {"step": t, "history": history[-10:]}}
            d = policy.decide(c, list(ACTIONS))
            i = sample_index(d.pmf, seed, f"{ep}-{t}")
            reward, done = env.step(ACTIONS[i])
            if learn:
                policy.learn([{"context": c, "actions": list(ACTIONS), "chosen": i,
                               "propensity": float(d.pmf[i]), "reward": reward}])
            if collect is not None:
                collect.append((c, i, reward, done))
            history.append({"action": ACTIONS[i], "reward": reward})
            total, t, context = total + reward, t + 1, env.context()
        returns.append(total)
    return float(np.mean(returns))


def test_fitted_q_beats_every_bandit_on_the_engagement_environment(tmp_path):
    """Seeds fixed; observed margins ≈ 1.4×, asserted 1.1× (the issue's target)."""
    bandits = {}
    for name, s in {"linucb": {"type": "linucb", "alpha": 0.5},
                    "greedy": {"type": "epsilon_greedy", "epsilon": 0.1},
                    "uniform": {"type": "epsilon_greedy", "epsilon": 1.0}}.items():
        policy = make_policy(s, {"context_dim": 8})
        _rollouts(policy, 300, 1, learn=True)
        bandits[name] = _rollouts(policy, 600, 2, learn=True)
    data = []
    _rollouts(make_policy({"type": "epsilon_greedy", "epsilon": 0.5}, {"context_dim": 8}),
              1500, 5, learn=True, collect=data)
    state = {"features": ["user.engagement", "user.affinity"], "history": 2, "step": True}
    enc = StateEncoder(state, ACTIONS)
    X = np.array([enc.encode(c) for c, *_ in data])
    A, R, done = (np.array([d[k] for d in data]) for k in (1, 2, 3))
    X_next = np.vstack([X[1:], np.zeros((1, enc.dim))])   # rows are consecutive steps
    layers = fitted_q(X, A, R, X_next, done, len(ACTIONS), iterations=12, seed=0)
    q = make_policy({"type": "qnetwork", "model": write_model(tmp_path / "q.onnx", layers),
                     "action_ids": list(ACTIONS), "state": state, "epsilon": 0.05})
    q_return = _rollouts(q, 600, 2, learn=False)
    assert q_return > 1.1 * max(bandits.values()), (q_return, bandits)
