"""Featurizer: stable hashing, layout, dense blocks, interactions, input errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bandits import ConfigError, FeatureError, Featurizer, make_featurizer
from bandits.inputs import iter_namespaces

from .conftest import ACTIONS, CONTEXT


def _general_path(featurizer, context):
    """The context vector computed feature by feature, with no namespace memo."""
    return featurizer._ctx._build(iter_namespaces(context, "context"), "context", None)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCRIPT = """
import json, sys
from bandits import Featurizer
ctx, actions = json.loads(sys.argv[1])
X = Featurizer(context_dense={"user.emb": 3}).transform(ctx, actions).X
print(json.dumps(X.tolist()))
"""


def test_same_vectors_in_two_processes_with_different_hash_salts():
    ctx = dict(CONTEXT, user=dict(CONTEXT["user"], emb=[0.5, -1.0, 2.0]))
    arg = json.dumps([ctx, ACTIONS])
    outputs = []
    for salt in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=salt, PYTHONPATH=ROOT)
        out = subprocess.run([sys.executable, "-c", _SCRIPT, arg], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        outputs.append(np.array(json.loads(out)))
    local = Featurizer(context_dense={"user.emb": 3}).transform(ctx, ACTIONS).X
    assert np.array_equal(outputs[0], outputs[1])
    assert np.array_equal(outputs[0], local)


def test_layout_and_dimensions():
    f = Featurizer(context_dim=8, action_dim=4, interaction_dim=6, context_dense={"u.e": 2})
    assert f.context_width == 1 + 2 + 8
    assert f.dim == 11 + 4 + 6
    X = f.transform({"u": {"e": [3.0, 4.0]}}, ["x", "y"]).X
    assert X.shape == (2, 21)
    assert (X[:, 0] == 1).all()
    assert X[:, 1:3].tolist() == [[3.0, 4.0], [3.0, 4.0]]  # dense block kept in position
    assert not X[:, 3:11].any()                         # nothing hashed on the context side
    no_intercept = Featurizer(intercept=False)
    assert no_intercept.dim == Featurizer().dim - 1
    assert not no_intercept.transform({}, ["a"]).X[:, 0].all()


def test_numbers_strings_and_bags_hash_to_signed_entries():
    f = Featurizer(context_dim=64, interaction_dim=0, action_id=False)
    x = f.context_vector({"u": {"age": 2.5, "country": "FR", "tags": ["a", "b"], "off": 0, "none": None}})
    expected = np.zeros(f.context_width)
    expected[0] = 1.0
    for parts, value in [(("u", "age"), 2.5), (("u", "country", "FR"), 1.0),
                         (("u", "tags", "a"), 1.0), (("u", "tags", "b"), 1.0)]:
        index, sign, _, _ = f._ctx._slot(*parts)
        expected[1 + index] += sign * value
    assert np.array_equal(x, expected)
    assert np.count_nonzero(x) >= 3


def test_key_order_and_metadata_do_not_change_the_vector():
    f = Featurizer()
    a = f.transform({"u": {"x": 1, "y": "z"}, "d": {"os": "ios"}}, ACTIONS).X
    b = f.transform({"d": {"os": "ios", "_trace": "t1"}, "u": {"y": "z", "x": 1}, "_meta": 5}, ACTIONS).X
    assert np.array_equal(a, b)


def test_changed_action_features_are_not_served_from_the_memo():
    f = Featurizer()
    before = f.transform({}, [{"id": "a", "features": {"i": {"p": 1.0}}}]).X
    after = f.transform({}, [{"id": "a", "features": {"i": {"p": 2.0}}}]).X
    again = f.transform({}, [{"id": "a", "features": {"i": {"p": 1.0}}}]).X
    assert not np.array_equal(before, after)
    assert np.array_equal(before, again)


def test_action_memo_overflow_keeps_every_row_right(monkeypatch):
    from bandits import hashing
    monkeypatch.setattr(hashing, "ACTION_CACHE_LIMIT", 5)
    items = [{"id": f"i{j}", "features": {"i": {"p": float(j), "k": f"c{j % 3}"}}} for j in range(12)]
    fresh = [Featurizer().transform({"u": {"x": 1.0}}, [item]).X[0] for item in items]
    f = Featurizer()
    # memoised rows first, then new items that overflow the memo of 5, then repeats
    for picks in ([0, 1, 2], [0, 5, 6, 7, 8], [8, 9, 10, 11, 0], [3], [0, 1, 2, 3, 4]):
        X = f.transform({"u": {"x": 1.0}}, [items[j] for j in picks]).X
        assert np.array_equal(X, np.array([fresh[j] for j in picks])), picks


def test_interactions_are_the_count_sketch_of_the_outer_product():
    f = Featurizer(context_dim=16, action_dim=8, interaction_dim=7)
    ctx = {"u": {"a": 2.0, "c": "FR"}}
    action = {"id": "it", "features": {"i": {"p": 3.0, "k": "x"}}}
    z = f.transform(ctx, [action]).X[0, -7:]
    cs = [(f._ctx._slot("u", "a"), 2.0), (f._ctx._slot("u", "c", "FR"), 1.0)]
    acts = [(f._act._slot("i", "p"), 3.0), (f._act._slot("i", "k", "x"), 1.0), (f._act._slot("_id", "it"), 1.0)]
    expected = np.zeros(7)
    for (_, _, hc, sc), vc in cs:
        for (_, _, ha, sa), va in acts:
            expected[(hc + ha) % 7] += sc * sa * vc * va
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-12)


def test_disjoint_rows_hold_only_the_context():
    f = Featurizer()
    feats = f.transform(CONTEXT, ACTIONS, shared=False)
    assert feats.X.shape == (len(ACTIONS), f.context_width)
    assert (feats.X == feats.X[0]).all()
    assert feats.ids == tuple(a["id"] for a in ACTIONS)


def test_empty_context_is_context_free_use():
    f = Featurizer()
    X = f.transform(None, ["a", "b"]).X
    assert X.shape == (2, f.dim) and not np.array_equal(X[0], X[1])  # ids still differ


@pytest.mark.parametrize("context, actions, match", [
    ({"u": {"e": [1.0, 2.0]}}, ["a"], r"context\.u\.e: list of numbers is an embedding"),
    ({"u": {"emb": [1.0]}}, ["a"], r"context\.u\.emb: must be a list of 2 numbers"),
    ({"u": {"x": float("nan")}}, ["a"], r"context\.u\.x: must be a finite number"),
    ({"u": {"x": float("inf")}}, ["a"], r"context\.u\.x: must be a finite number"),
    ({"u": {"x": 10 ** 400}}, ["a"], r"context\.u\.x: must be a finite number"),
    ({"u": {"a": 1.0, "b": 2.0, "c": 3.0, "x": 10 ** 400}}, ["a"], r"context\.u\.x: must be a finite"),
    ({"u": {"a": 1.0, "b": 2.0, "c": 3.0, "x": float("nan")}}, ["a"], r"context\.u\.x: must be a finite"),
    ({"u": {"e": [1.0, 10 ** 400]}}, ["a"], r"context\.u\.e: embedding holds NaN, Infinity or a number of magnitude above 1e\+15"),
    ({"u": {"x": 2e15}}, ["a"], r"context\.u\.x: must be a finite number of magnitude at most 1e\+15, got 2000000000000000\.0"),
    ({"u": {"a": 1.0, "b": 2.0, "c": 3.0, "x": -1e299}}, ["a"], r"context\.u\.x: must be a finite number of magnitude"),
    ({"u": {"emb": [1.0, 1e16]}}, ["a"], r"context\.u\.emb: embedding holds NaN, Infinity or a number of magnitude"),
    ({}, [{"id": "a", "features": {"i": {"p": 1e16}}}], r"actions\[0\]\.features\.i\.p: must be a finite number of magnitude"),
    ({"u": {"x": [1, "a"]}}, ["a"], r"context\.u\.x: a list must hold only strings or only numbers"),
    ({"u": {"x": {"deep": 1}}}, ["a"], r"context\.u\.x: must be a number, a string, a list of strings "
                                       r"or of numbers, or null, got an object"),
    ("not an object", ["a"], r"context: must be an object"),
    ({}, [], r"actions: must be a non-empty list"),
    ({}, "a", r"actions: must be a non-empty list"),
    ({}, [{"features": {}}], r"actions\[0\]\.id: must be a non-empty string"),
    ({}, [{"id": ""}], r"actions\[0\]\.id: must be a non-empty string"),
    ({}, ["a", "b", "a"], r"actions\[2\]\.id: duplicate action id 'a'"),
    ({}, [{"id": "a", "features": [1]}], r"actions\[0\]\.features: must be an object"),
    ({}, [{"id": "a", "features": {"i": {"p": float("nan")}}}], r"actions\[0\]\.features\.i\.p: must be a finite"),
    ({}, [3], r"actions\[0\]: must be an object"),
    ({}, [{"id": "a", "feature": {"i": {"p": 1.0}}}],
     r"actions\[0\]\.feature: unknown key \(allowed: id, features\)"),
    ({}, ["b", {"id": "a", "features": {"i": {"p": 1.0}}, "weight": 2}],
     r"actions\[1\]\.weight: unknown key \(allowed: id, features\)"),
])
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # xᵀx of 1e299: refused
def test_bad_input_names_the_field(context, actions, match):
    f = Featurizer(context_dense={"u.emb": 2})
    with pytest.raises(FeatureError, match=match):
        f.transform(context, actions)


@pytest.mark.parametrize("spec, match", [
    ({"context_dim": 0}, r"featurizer\.context_dim: must be an integer >= 1"),
    ({"interaction_dim": -1}, r"featurizer\.interaction_dim: must be an integer >= 0"),
    ({"intercept": "yes"}, r"featurizer\.intercept: must be true or false, got the string 'yes'"),
    ({"context_dim": True}, r"featurizer\.context_dim: must be an integer >= 1, got the boolean true"),
    ({"context_dim": None}, r"featurizer\.context_dim: must be an integer >= 1, got null"),
    ({"context_dim": [8]}, r"featurizer\.context_dim: must be an integer >= 1, got a list"),
    ({"context_dense": {"u.e": 0}}, r"featurizer\.context_dense\.u\.e: must be an integer >= 1"),
    ({"context_dim": 2.5}, r"featurizer\.context_dim: must be an integer"),
    ({"dims": 3}, r"featurizer\.dims: unknown key \(allowed: context_dim, action_dim"),
])
def test_bad_featurizer_spec_names_the_key(spec, match):
    with pytest.raises(ConfigError, match=match):
        make_featurizer(spec)


def test_config_round_trip():
    f = Featurizer(context_dim=10, action_dense={"i.v": 4}, hash_seed=3)
    g = make_featurizer(f.get_config())
    assert g.get_config() == f.get_config()
    X = {"i": {"v": [1.0, 2.0, 3.0, 4.0]}}
    assert np.array_equal(f.transform(CONTEXT, [{"id": "a", "features": X}]).X,
                          g.transform(CONTEXT, [{"id": "a", "features": X}]).X)


def test_namespace_memos_give_the_general_path_vectors():
    f = Featurizer(context_dim=16, interaction_dim=8)
    ctx = {"num": {f"x{i}": float(i) - 2.5 for i in range(6)} | {"flag": True, "_m": 9},
           "cat": {"a": "1", "b": "2", "c": "3", "d": "4"},
           "mixed": {"a": 1.0, "b": "x", "c": ["t"], "d": None}}
    general = _general_path(f, ctx)
    for _ in range(2):  # first sight builds the memos, second uses them
        np.testing.assert_allclose(f._ctx.entry(ctx, "context"), general, rtol=0, atol=1e-12)
    assert {key[0] for key in f._ctx._layouts} == {"num", "cat", "mixed"}
    changed = dict(ctx, num=dict(ctx["num"], x0=100.0))
    assert not np.allclose(f._ctx.entry(changed, "context"), general)


def test_memoised_actions_are_still_validated():
    f = Featurizer()
    f.transform({}, [{"id": "a", "features": {"i": {"p": 1.0}}}, "b"])
    with pytest.raises(FeatureError, match=r"actions\[1\]\.id: duplicate action id 'a'"):
        f.transform({}, [{"id": "a", "features": {"i": {"p": 1.0}}}, {"id": "a", "features": {"i": {"p": 1.0}}}])
    with pytest.raises(FeatureError, match=r"actions\[1\]\.features\.i\.p: must be a finite"):
        f.transform({}, ["b", {"id": "a", "features": {"i": {"p": float("inf")}}}])
    ids = f.transform({}, ("b", {"id": "a", "features": {"i": {"p": 1.0}}})).ids  # tuples too
    assert ids == ("b", "a")


@pytest.mark.parametrize("interaction_dim", [0, 8])
def test_namespace_memos_fall_back_when_the_value_types_change(interaction_dim):
    f = Featurizer(context_dim=16, interaction_dim=interaction_dim)
    fresh = Featurizer(context_dim=16, interaction_dim=interaction_dim)
    numeric = {"n": {"a": 1.0, "b": 2, "c": True, "d": 0.5}}
    strings = {"s": {"a": "x", "b": "y", "c": "z", "d": "w"}}
    for ctx in (numeric, strings,
                {"n": {"a": "1.0", "b": 2, "c": True, "d": 0.5}},  # a string is categorical
                {"s": {"a": ["x"], "b": "y", "c": "z", "d": "w"}},  # a bag where strings were
                {"s": {"a": 1.0, "b": "y", "c": "z", "d": "w"}}):
        np.testing.assert_allclose(f._ctx.entry(ctx, "context"), _general_path(fresh, ctx),
                                   rtol=0, atol=1e-12)
    with pytest.raises(FeatureError, match=r"context\.n\.a: must be a finite"):
        f.transform({"n": {"a": float("inf"), "b": 2, "c": True, "d": 0.5}}, ["x"])


def test_loose_features_and_an_empty_namespace_name_both_count():
    f = Featurizer(context_dim=64, interaction_dim=0)
    both = f.context_vector({"": {"a": 1.0}, "b": 2.0})
    assert np.array_equal(both, f.context_vector({"": {"a": 1.0, "b": 2.0}}))
    assert np.count_nonzero(both[1:]) == 2
