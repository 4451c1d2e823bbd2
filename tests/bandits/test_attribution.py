"""Occlusion attributions of a Q-network: exact for a network linear in its state
(wᵢₖ·xᵢ, summing to Q − Q(0)), and the entry a ReLU network depends on comes first."""
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from bandits import make_policy  # noqa: E402
from bandits.attribution import occlusion, state_names  # noqa: E402
from bandits.offline.onnx_mlp import mlp_onnx  # noqa: E402

IDS = ["stay", "nudge", "offer"]
STATE = {"features": ["user.engagement", "user.tenure"], "history": 1, "step": True}
CONTEXT = {"user": {"engagement": 0.7, "tenure": 3.0},
           "_session": {"step": 2, "history": [{"action": "nudge", "reward": 1.0}]}}


def _policy(tmp_path, layers):
    path = tmp_path / "q.onnx"
    path.write_bytes(mlp_onnx(layers))
    return make_policy({"type": "qnetwork", "model": str(path), "action_ids": IDS, "state": STATE,
                        "epsilon": 0.1})


def test_a_linear_network_is_attributed_exactly(tmp_path):
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(7, 3)), rng.normal(size=3)
    policy = _policy(tmp_path, [(W, b)])
    x = policy.encoder.encode(CONTEXT)
    assert state_names(policy.encoder) == [
        "user.engagement", "user.tenure", "step", "history[0].action=stay",
        "history[0].action=nudge", "history[0].action=offer", "history[0].reward"]
    out = occlusion(policy, CONTEXT, IDS, top=7)
    decision = policy.decide(CONTEXT, IDS)
    for k, e in enumerate(out):
        got = {f["feature"]: f["attribution"] for f in e["features"]}
        for i, name in enumerate(state_names(policy.encoder)):
            assert got[name] == pytest.approx(W[i, k] * x[i], abs=1e-5)   # float32 network
        assert sum(got.values()) == pytest.approx(e["q"] - e["q_without_state"], abs=1e-5)
        p = e["probability"]
        assert p["greedy"] + p["epsilon_floor"] == pytest.approx(decision.pmf[k], abs=1e-6)
        assert e["approximate"] is True


def test_the_entry_a_relu_network_depends_on_comes_first(tmp_path):
    W1 = np.zeros((7, 4))
    W1[1, :] = [1.0, 0.5, -0.5, 2.0]            # only user.tenure reaches the hidden layer
    W2 = np.ones((4, 3))
    policy = _policy(tmp_path, [(W1, np.zeros(4)), (W2, np.zeros(3))])
    for e in occlusion(policy, CONTEXT, IDS, top=3):
        assert e["features"][0]["feature"] == "user.tenure"
        assert e["features"][0]["attribution"] == pytest.approx(3.0 * 3.5, abs=1e-4)
        assert all(f["attribution"] == 0.0 for f in e["features"][1:])
