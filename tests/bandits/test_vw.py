"""VWPolicy specifics: text format, example reuse, alignment, refused options."""
import numpy as np
import pytest
import vowpalwabbit

from bandits import ConfigError, Feedback, make_policy
from bandits.vw import VWPolicy

from .conftest import ACTIONS, CONTEXT


def test_text_format_escapes_and_groups_namespaces():
    p = VWPolicy()
    ctx = {"user": {"city": "New York", "age": 31, "tags": ["a|b", "c"], "emb": [0.5, 0.0]},
           "plain": 1.5, "_meta": "x"}
    text = p._namespaces("s", ctx, "context")
    assert text == "|suser city=New_York age:31.0 tags=a_b tags=c emb_0:0.5 |s plain:1.5"
    assert p._action_text("item 1", {"i": {"p": 2}}, 0) == "|ai p:2.0 |a_id item_1"


def test_reused_examples_predict_like_freshly_parsed_text():
    p = VWPolicy(args="--epsilon 0.2")
    for t in range(40):
        p.learn([Feedback(CONTEXT, ACTIONS, t % 5, 0.2, float(t % 5 == 3))])
    cached = [p.decide(CONTEXT, ACTIONS).pmf for _ in range(3)]
    lines = ["shared " + p._namespaces("s", CONTEXT, "context")]
    lines += [p._action_text(a["id"], a["features"], i) for i, a in enumerate(ACTIONS)]
    fresh = np.array(p._ws.predict(lines), dtype=np.float64)
    fresh = 0.999 * fresh / fresh.sum() + 0.001 / 5  # the default floor
    for pmf in cached:
        np.testing.assert_allclose(pmf, fresh, rtol=0, atol=1e-12)
    assert int(np.argmax(cached[0])) == 3  # the pmf is aligned with the request's actions
    assert cached[0][3] == pytest.approx(0.999 * (1 - 0.2 + 0.2 / 5) + 0.001 / 5, abs=1e-6)


def test_snapshot_model_loads_in_plain_vw(tmp_path):
    """The ``vw_model`` member is VW's own model file: VW alone predicts the same pmf."""
    from bandits.snapshot import unpack

    p = VWPolicy(args="--squarecb", floor=0.0)
    p.learn([Feedback(CONTEXT, ACTIONS, 1, 0.2, 1.0)])
    _, arrays = unpack(p.to_bytes())
    path = tmp_path / "model.vw"
    path.write_bytes(arrays["vw_model"].tobytes())
    plain = vowpalwabbit.Workspace(f"--quiet -i {path}")
    lines = ["shared " + p._namespaces("s", CONTEXT, "context")]
    lines += [p._action_text(a["id"], a["features"], i) for i, a in enumerate(ACTIONS)]
    expected = np.array(plain.predict(lines), dtype=np.float64)
    np.testing.assert_allclose(p.decide(CONTEXT, ACTIONS).pmf, expected / expected.sum(), atol=1e-12)
    assert "--squarecb" in plain.get_arguments()


@pytest.mark.parametrize("args, match", [
    ("--data file.txt", "option --data is managed by cbserve"),
    ("--interactions sa", "option --interactions is managed"),
    ("--random_seed=3", "option --random_seed is managed"),
    ("--epsilon 'x", "cannot split"),
    ("--bogus_option 3", "Vowpal Wabbit refused"),
])
def test_refused_args(args, match):
    with pytest.raises(ConfigError, match=match):
        make_policy({"type": "vw", "args": args})


@pytest.mark.parametrize("args", ["--epsilon 0.1", "--squarecb", "--bag 3", "--cover 3",
                                  "--softmax --lambda 5", "--first 2", "--regcb"])
def test_every_exploration_gives_a_valid_pmf(args):
    p = make_policy({"type": "vw", "args": args})
    for t in range(20):
        d = p.decide(CONTEXT, ACTIONS)
        p.learn([Feedback(CONTEXT, ACTIONS, t % 5, float(d.pmf[t % 5]), float(t % 2))])
    pmf = p.decide(CONTEXT, ACTIONS).pmf
    assert pmf.shape == (5,) and abs(pmf.sum() - 1) < 1e-12 and (pmf >= 0.001 / 5).all()


def test_shared_features_matter_by_default():
    """With -q sa the best action depends on the context; without it it cannot."""
    def train(interactions):
        p = VWPolicy(args="--epsilon 0.1", interactions=interactions, action_id=True)
        for t in range(600):
            side = "left" if t % 2 else "right"
            k = (t // 2) % 2  # both actions shown in both contexts
            r = float((side == "left") == (k == 0))
            p.learn([Feedback({"u": {"side": side}}, ["x", "y"], k, 0.5, r)])
        return [int(np.argmax(p.decide({"u": {"side": s}}, ["x", "y"]).pmf)) for s in ("left", "right")]
    assert train(["sa"]) == [0, 1]
    assert len(set(train([]))) == 1


@pytest.mark.parametrize("args", ["--bag 3", "--cover 3", "--epsilon 0.1"])
def test_a_snapshot_after_learning_reloads_and_decides_the_same(args):
    p = VWPolicy(args=args, seed=5)
    for t in range(20):
        p.learn([Feedback(CONTEXT, ACTIONS, t % 5, 0.2, float(t % 3 == 0))])
    q = VWPolicy.from_bytes(p.to_bytes())  # --bag saves an advanced random seed
    np.testing.assert_array_equal(q.decide(CONTEXT, ACTIONS).pmf, p.decide(CONTEXT, ACTIONS).pmf)
