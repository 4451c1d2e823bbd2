"""The action memo's fast path refuses exactly what the validating path refuses."""
import pytest

from bandits import FeatureError
from bandits.featurizer import Featurizer
from bandits.hashing import shared_copy

ITEM = {"id": "a", "features": {"i": {"p": 1.0, "c": "x", "tags": ["t", "u"]}}}


@pytest.mark.parametrize("actions, match", [
    ([dict(ITEM, weight=2)], r"actions\[0\]\.weight: unknown key"),
    ([ITEM, dict(ITEM)], r"actions\[1\]\.id: duplicate action id 'a'"),
    (["b", "b"], r"actions\[1\]\.id: duplicate action id 'b'"),
    ([{"id": "a", "features": {"i": {"p": float("nan"), "c": "x", "tags": ["t", "u"]}}}],
     r"actions\[0\]\.features\.i\.p: must be a finite"),
])
def test_memoised_actions_are_refused_like_new_ones(actions, match):
    f = Featurizer()
    f.transform({}, [ITEM, "b"])
    f.transform({}, [ITEM, "b"])  # both memoised now
    with pytest.raises(FeatureError, match=match):
        f.transform({}, actions)


def test_an_id_of_a_string_subclass_is_refused_even_when_memoised():
    class Name(str):
        pass

    f = Featurizer()
    f.transform({}, ["b"])
    with pytest.raises(FeatureError, match=r"actions\[0\]\.id: must be a non-empty string"):
        f.transform({}, [Name("b")])
    with pytest.raises(FeatureError, match=r"actions\[0\]\.id: must be a non-empty string"):
        f.transform({}, [{"id": Name("b"), "features": {}}])


def test_memo_copies_compare_as_the_original():
    obj = {"i": {"p": 1.0, "c": "x", "tags": ["t", "u"], "e": (1.0, 2.0), "n": None, "b": True}}
    copied = shared_copy(obj)
    assert copied == obj and copied is not obj and copied["i"]["tags"] is not obj["i"]["tags"]
    assert type(copied["i"]["e"]) is tuple and copied != {"i": dict(obj["i"], e=[1.0, 2.0])}


def test_action_vectors_of_new_actions_when_the_memo_grows():
    f = Featurizer(interaction_dim=4)
    pairs = [(f"item-{k}", {"i": {"p": float(k)}}) for k in range(100)]  # more than one growth
    A = f._act.action_vectors(pairs, True)
    for k in (0, 63, 64, 99):
        assert (A[k] == f._act.action_vectors(pairs[k:k + 1], True)[0]).all()
    X = f.transform({"u": {"a": 1.0}}, [{"id": aid, "features": feats} for aid, feats in pairs]).X
    assert (X[:, f.context_width:f.context_width + f._act.width] == A[:, :f._act.width]).all()


def test_memo_copies_share_equal_strings_in_a_bounded_table(monkeypatch):
    from bandits import hashing

    monkeypatch.setattr(hashing, "_shared_strings", {})
    monkeypatch.setattr(hashing, "SHARED_STRINGS_LIMIT", 10)
    first = hashing.shared_copy({"item": {"genre": "".join(["dra", "ma"])}})
    second = hashing.shared_copy({"item": {"genre": "".join(["dra", "ma"])}})
    assert first == second and first["item"]["genre"] is second["item"]["genre"]
    monkeypatch.setattr(hashing, "SHARED_STRINGS_LIMIT", 4)
    for text in ("a", "b", "c", "d"):
        hashing.shared_copy(text)
    assert len(hashing._shared_strings) <= 4  # started afresh instead of growing
