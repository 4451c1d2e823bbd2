"""Explanations of linear policies are exact: the intercept and every feature's and
pair's contribution sum to the estimate, the bonus takes it to the score, and the
probability's parts to the pmf (within 1e-9), for every kind of feature and model."""
import numpy as np
import pytest

from bandits import EpsilonGreedy, LinTS, LinUCB
from bandits.explain import explain, explains

FEATURIZER = {"context_dim": 8, "action_dim": 8, "interaction_dim": 16,
              "context_dense": {"user.emb": 3}}


def _context(rng):
    return {"user": {"country": str(rng.choice(["FR", "DE", "JP"])), "age": float(rng.integers(18, 70)),
                     "premium": bool(rng.integers(2)), "tags": ["a", "b", "a"][: int(rng.integers(0, 4))],
                     "emb": rng.normal(size=3).tolist(), "zero": 0, "_debug": 1},
            "device": {"os": str(rng.choice(["ios", "android"]))}, "loose": 2.5}


def _actions(rng):
    return [{"id": f"item-{j}", "features": {"item": {"price": float(j), "genre": ["drama", "comedy"][j % 2],
                                                      "colours": ["red", "blue"][: 1 + j % 2]}}}
            for j in rng.choice(10, 4, replace=False).tolist()]


POLICIES = [
    lambda: EpsilonGreedy(epsilon=0.2, featurizer=FEATURIZER),
    lambda: LinUCB(alpha=0.7, epsilon=0.05, featurizer=FEATURIZER),
    lambda: LinUCB(alpha=0.7, epsilon=0.05, featurizer={**FEATURIZER, "intercept": False}),
    lambda: LinTS(v=0.5, epsilon=0.05, featurizer=FEATURIZER),
    lambda: LinUCB(alpha=0.3, model="disjoint", featurizer=FEATURIZER),
    lambda: EpsilonGreedy(epsilon=0.1, model="disjoint", featurizer=FEATURIZER),
    lambda: LinTS(v=0.3, model="disjoint", featurizer=FEATURIZER),
]


def _trained(make, rng):
    policy = make()
    batch = []
    for _ in range(60):
        ctx, acts = _context(rng), _actions(rng)
        batch.append({"context": ctx, "actions": acts, "chosen": int(rng.integers(4)),
                      "propensity": 0.25, "reward": float(rng.normal())})
    policy.learn(batch)
    return policy


@pytest.mark.parametrize("make", POLICIES)
def test_the_parts_sum_to_the_estimate_the_score_and_the_probability(make):
    rng = np.random.default_rng(3)
    policy = _trained(make, rng)
    for _ in range(10):
        ctx, acts = _context(rng), _actions(rng)
        decision = policy.decide(ctx, acts)
        out = explain(policy, ctx, acts, top=1000)
        assert [e["id"] for e in out] == list(decision.action_ids)
        ids = tuple(a["id"] for a in acts)
        means = policy._means(ids, policy.featurizer.rows(ctx, [(a["id"], a["features"]) for a in acts],
                                                          policy._shared))
        for k, e in enumerate(out):
            total = e["intercept"] + sum(r["contribution"] for r in e["features"]) + e["rest"]
            assert e["rest"] == 0.0
            assert total == pytest.approx(means[k], abs=1e-9)   # θᵀx, computed apart
            assert e["mean"] == pytest.approx(means[k], abs=1e-9)
            assert e["score"] == decision.scores[k]
            p = e["probability"]
            if policy.name == "lints":   # whole posterior draws, M of them
                wins = p["draw_wins"] * policy.n_draws
                assert wins == pytest.approx(round(wins), abs=1e-9)
                assert p["greedy"] == pytest.approx((1 - policy.epsilon) * p["draw_wins"], abs=1e-12)
            else:                          # from the scores alone
                assert p["greedy"] + p["epsilon_floor"] == pytest.approx(decision.pmf[k], abs=1e-9)
        if policy.name == "lints":
            assert sum(e["probability"]["draw_wins"] for e in out) == pytest.approx(1.0)
        else:
            assert sum(e["probability"]["greedy"] for e in out) == pytest.approx(1 - policy.epsilon)
        # truncated to the top contributions, the rest is summed
        short = explain(policy, ctx, acts, top=3, decision=decision)
        for e in short:
            assert len(e["features"]) == 3
            total = e["intercept"] + sum(r["contribution"] for r in e["features"]) + e["rest"]
            assert total == pytest.approx(e["mean"], abs=1e-9)
            assert abs(e["features"][0]["contribution"]) >= abs(e["features"][-1]["contribution"])


def test_a_bonus_is_linucbs_width_and_zero_for_the_others():
    rng = np.random.default_rng(4)
    ucb = _trained(POLICIES[1], rng)
    ctx, acts = _context(rng), _actions(rng)
    means, widths = ucb._means_and_widths(tuple(a["id"] for a in acts),
                                          ucb.featurizer.rows(ctx, [(a["id"], a["features"]) for a in acts]))
    for e, w in zip(explain(ucb, ctx, acts), widths):
        assert e["bonus"] == pytest.approx(0.7 * w, abs=1e-12)
    greedy = _trained(POLICIES[0], rng)
    assert all(e["bonus"] == 0.0 and e["mean"] == e["score"] for e in explain(greedy, ctx, acts))


def test_one_feature_worth_the_reward_is_named_first():
    """A reward that is 2 × price: after learning, price carries the estimate."""
    rng = np.random.default_rng(5)
    policy = EpsilonGreedy(epsilon=0.1, l2=0.01, featurizer={"interaction_dim": 0, "action_id": False})
    batch = []
    for _ in range(300):
        acts = [{"id": f"i{j}", "features": {"item": {"price": float(j), "genre": str(j % 3)}}}
                for j in rng.choice(20, 3, replace=False).tolist()]
        c = int(rng.integers(3))
        batch.append({"context": {"u": {"x": float(rng.normal())}}, "actions": acts, "chosen": c,
                      "propensity": 1 / 3, "reward": 2.0 * acts[c]["features"]["item"]["price"]})
    policy.learn(batch)
    out = explain(policy, {"u": {"x": 0.1}}, [{"id": "i9", "features": {"item": {"price": 9.0, "genre": "0"}}}])
    first = out[0]["features"][0]
    assert (first["namespace"], first["feature"], first["value"]) == ("item", "price", 9.0)
    assert first["weight"] == pytest.approx(2.0, rel=0.05)   # signed: the feature's own
    assert first["contribution"] == pytest.approx(18.0, rel=0.05)


def test_only_linear_policies_explain():
    assert explains(LinUCB()) is None

    class Other:
        name = "other"
    assert "no exact decomposition" in explains(Other())


def test_a_disjoint_models_weights_are_listed_per_action_and_collisions_show():
    from bandits.explain_model import bucket_names, summary
    policy = EpsilonGreedy(model="disjoint", l2=0.01, featurizer={"context_dim": 2, "interaction_dim": 0})
    rng = np.random.default_rng(6)
    batch = []
    for _ in range(200):
        x = float(rng.normal())
        c = int(rng.integers(2))
        batch.append({"context": {"u": {"x": x}}, "actions": ["a", "b"], "chosen": c, "propensity": 0.5,
                      "reward": (2.0 if c == 0 else -1.0) * x})
    policy.learn(batch)
    traffic = [({"u": {"x": 1.0, **{f"f{i}": 1.0 for i in range(8)}}}, [("a", {}), ("b", {})])]
    names = bucket_names(policy, traffic, limit=3)
    out = summary(policy, names, top=1)
    assert out["model"] == "disjoint" and sorted(out["actions"]) == ["a", "b"]
    a, b = out["actions"]["a"][0], out["actions"]["b"][0]
    weight = {arm: next(f["weight"] for f in row["features"] if f["name"] == "u.x") for arm, row in (("a", a), ("b", b))}
    assert weight["a"] == pytest.approx(2.0, abs=0.1) and weight["b"] == pytest.approx(-1.0, abs=0.1)
    assert abs(a["bucket_weight"]) == pytest.approx(abs(weight["a"]))   # the sign is the name's
    # 9 context features in 2 buckets: each bucket lists 3 names and counts the others
    hashed = [row for col, row in names.items() if col != "refused" and row["kind"] == "context"]
    assert sum(len(row["names"]) + row["more"] for row in hashed) == 9
    assert all(len(row["names"]) <= 3 for row in hashed)
