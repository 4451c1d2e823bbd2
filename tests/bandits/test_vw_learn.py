"""VWPolicy's learn and memo paths: the direct parse-learn-finish path gives the model of
VW's own ``Workspace.learn``, byte for byte; memoised actions are refused as new ones are."""
import pytest

from bandits import Feedback, FeatureError
from bandits import vw as vw_module
from bandits.environments import LinearStream
from bandits.vw import VWPolicy

from .conftest import ACTIONS, CONTEXT


def _events(n=60):
    env = LinearStream(seed=3)
    out = []
    for t in range(n):
        ctx, x = env.context()
        k = t % len(env.actions)
        out.append(Feedback(ctx, env.actions, k, 1.0 / len(env.actions), env.reward(k, x)))
    return out


@pytest.mark.parametrize("args", ["--epsilon 0.1", "--squarecb", "--bag 3", "--cover 3", "--softmax --lambda 2"])
def test_direct_learn_gives_the_workspace_learn_model(monkeypatch, args):
    events = _events() + [Feedback(CONTEXT, ACTIONS, 2, 0.2, 1.0)] * 3
    direct, plain = VWPolicy(args=args), VWPolicy(args=args)
    for fb in events:
        direct.learn([fb])
    monkeypatch.setattr(vw_module, "_RAW_LEARN", False)
    for fb in events:
        plain.learn([fb])
    assert direct.to_bytes() == plain.to_bytes()
    assert (direct.decide(CONTEXT, ACTIONS).pmf == plain.decide(CONTEXT, ACTIONS).pmf).all()


def test_memoised_actions_in_feedback_are_still_validated():
    p = VWPolicy()
    p.learn([Feedback(CONTEXT, ACTIONS, 0, 0.2, 1.0)])
    typo = [dict(a) for a in ACTIONS]
    typo[2] = dict(typo[2], feature={})
    with pytest.raises(FeatureError, match=r"feedback\[0\]\.actions\[2\]\.feature: unknown key"):
        p.learn([Feedback(CONTEXT, typo, 0, 0.2, 1.0)])
    with pytest.raises(FeatureError, match=r"feedback\[0\]\.actions\[1\]\.id: duplicate"):
        p.learn([Feedback(CONTEXT, [ACTIONS[0], ACTIONS[0]], 0, 0.5, 1.0)])


def test_decide_from_the_memo_refuses_what_a_first_decide_refuses():
    p = VWPolicy()
    first = p.decide(CONTEXT, ACTIONS)
    again = p.decide(CONTEXT, [dict(a) for a in ACTIONS])  # every action memoised now
    assert again.action_ids == first.action_ids and (again.pmf == first.pmf).all()
    typo = [dict(a) for a in ACTIONS]
    typo[1] = dict(typo[1], weight=2)
    with pytest.raises(FeatureError, match=r"actions\[1\]\.weight: unknown key"):
        p.decide(CONTEXT, typo)
    with pytest.raises(FeatureError, match=r"context: must be an object"):
        p.decide("not an object", ACTIONS)
