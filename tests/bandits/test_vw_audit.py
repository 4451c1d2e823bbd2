"""VW explanations come from VW's own audit: the features VW used, each value × weight,
summing to the cost VW predicts wherever VW did not clip it; the feature that sets the
reward is named first."""
import numpy as np
import pytest

from bandits import make_policy
from bandits.vw_audit import explain_vw


def _trained():
    policy = make_policy({"type": "vw", "args": "--epsilon 0.1 --power_t 0 -l 0.2"})
    rng = np.random.default_rng(1)
    batch = []
    for _ in range(400):
        ctx = {"user": {"spend": float(rng.integers(0, 4)), "city": str(rng.choice(["a", "b"]))}}
        acts = [{"id": f"i{j}", "features": {"item": {"size": float(j)}}} for j in range(3)]
        c = int(rng.integers(3))
        batch.append({"context": ctx, "actions": acts, "chosen": c, "propensity": 1 / 3,
                      "reward": 0.5 * ctx["user"]["spend"]})
    policy.learn(batch)
    return policy


def test_contributions_sum_to_vws_own_prediction_and_name_the_reward_feature():
    policy = _trained()
    acts = [{"id": f"i{j}", "features": {"item": {"size": float(j)}}} for j in range(3)]
    for spend in (1.0, 2.0):
        ctx = {"user": {"spend": spend, "city": "a"}}
        decision = policy.decide(ctx, acts)
        out = explain_vw(policy, ctx, acts, top=50, decision=decision)
        assert [e["id"] for e in out] == ["i0", "i1", "i2"]
        for e, p in zip(out, decision.pmf):
            assert e["rest"] == 0.0
            total = e["intercept"] + sum(f["contribution"] for f in e["features"])
            assert total == pytest.approx(e["clipped"], abs=2e-3)  # VW's own prediction, not clipped here
            assert e["mean"] == pytest.approx(0.5 * spend, abs=0.15)
            named = [f for f in e["features"] if f["kind"] != "interaction"]
            assert (named[0]["namespace"], named[0]["feature"]) == ("user", "spend")
            assert e["probability"]["value"] == pytest.approx(p)


def test_the_audit_follows_the_model_after_it_learns():
    policy = _trained()
    acts = [{"id": "i0", "features": {"item": {"size": 0.0}}}]
    before = explain_vw(policy, {"user": {"spend": 2.0}}, acts)[0]["mean"]
    policy.learn([{"context": {"user": {"spend": 2.0}}, "actions": acts, "chosen": 0,
                   "propensity": 1.0, "reward": 5.0}] * 30)
    after = explain_vw(policy, {"user": {"spend": 2.0}}, acts)[0]["mean"]
    assert after > before + 0.5


def test_an_action_without_features_keeps_its_place():
    """VW prints an empty audit line for an example without features: the actions after
    it are still explained with their own features."""
    policy = make_policy({"type": "vw", "args": "--epsilon 0.1 --noconstant", "action_id": False})
    acts = [{"id": "bare", "features": {}}, {"id": "big", "features": {"item": {"x": 2.0}}}]
    policy.learn([{"context": {}, "actions": acts, "chosen": 1, "propensity": 0.5, "reward": 1.0}] * 5)
    out = explain_vw(policy, {}, acts)
    assert [e["id"] for e in out] == ["bare", "big"]
    assert out[0]["features"] == [] and out[0]["mean"] == 0.0
    assert [(f["namespace"], f["feature"]) for f in out[1]["features"]] == [("item", "x")]
