"""``Policy.decide_pairs``: the same Decision as ``decide`` for validated input, for every
policy (built-in, Q-network, plugin), and feature values are still checked."""
import numpy as np
import pytest

from bandits import FeatureError, Feedback, load_policy, make_policy
from bandits.inputs import normalize_actions

from .conftest import ACTIONS, CONTEXT
from .plugin_policy import Favourite, Pinned
from .test_contract import _train
from .test_qnetwork import IDS, ctx, spec as qspec, write_model


def _same(a, b):
    assert a.action_ids == b.action_ids and a.policy == b.policy
    assert a.pmf.tobytes() == b.pmf.tobytes() and a.scores.tobytes() == b.scores.tobytes()


def _pairs(actions):
    return [(aid, dict(feats)) for aid, feats in normalize_actions(actions)]


def test_decide_pairs_equals_decide(spec):
    policy = make_policy(spec)
    env = _train(policy)
    cold = load_policy(policy.to_bytes())          # its memos are empty: pairs go first
    for ctx_, actions in ((CONTEXT, ACTIONS), (env.context()[0], env.actions), ({}, ["a", "b"])):
        first = cold.decide_pairs(ctx_, _pairs(actions))
        _same(first, policy.decide(ctx_, actions))
        _same(first, cold.decide(ctx_, actions))
        _same(first, policy.decide_pairs(ctx_, _pairs(actions)))


@pytest.mark.parametrize("where", ["context", "action"])
def test_decide_pairs_checks_feature_values_as_decide_does(spec, where):
    """A bad value raises naming its field wherever ``decide`` raises (a disjoint model
    never reads action features, so there neither refuses them)."""
    policy = make_policy(spec)
    context, actions = {"user": {"age": 31}}, [dict(a) for a in ACTIONS]
    if where == "context":
        context = {"user": {"age": float("nan")}}
    else:
        actions[3] = {"id": "item-3", "features": {"item": {"price": [1.0, "x"]}}}
    try:
        expected = policy.decide(context, actions)
    except FeatureError as exc:
        with pytest.raises(FeatureError) as info:
            policy.decide_pairs(context, _pairs(actions))
        assert str(info.value) == str(exc) and ("age" in str(exc) or "actions[3]" in str(exc))
    else:
        assert where == "action" and spec.get("model") == "disjoint"
        _same(policy.decide_pairs(context, _pairs(actions)), expected)


def test_decide_pairs_after_a_changed_action_uses_its_new_features(spec):
    policy = make_policy(spec)
    policy.learn([Feedback(CONTEXT, ACTIONS, 1, 0.2, 1.0)])
    changed = [dict(a) for a in ACTIONS]
    changed[1] = {"id": "item-1", "features": {"item": {"cat": "c9", "price": 99.0}}}
    policy.decide_pairs(CONTEXT, _pairs(ACTIONS))
    _same(policy.decide_pairs(CONTEXT, _pairs(changed)), load_policy(policy.to_bytes()).decide(CONTEXT, changed))


def test_decide_pairs_of_a_plugin_and_a_q_network(tmp_path):
    plugin = Favourite(favourite="b")
    _same(plugin.decide_pairs({}, [("a", {}), ("b", {})]), plugin.decide({}, ["a", "b"]))
    q = make_policy(qspec(write_model(tmp_path / "q.onnx")))
    pairs = [(aid, {}) for aid in IDS]
    _same(q.decide_pairs(ctx(2.0), pairs), q.decide(ctx(2.0), IDS))
    np.testing.assert_allclose(q.decide_pairs(ctx(-1.0), pairs[::-1][:2]).scores, [0.1, 1.0], atol=1e-6)


def test_decide_pairs_of_a_plugin_that_overrides_decide_asks_its_decide():
    plugin = Pinned(favourite="a")
    _same(plugin.decide_pairs({}, [("a", {}), ("b", {})]), plugin.decide({}, ["a", "b"]))
    assert plugin.decide_pairs({}, [("a", {}), ("b", {})]).pmf.tolist() == [0.0, 1.0]
