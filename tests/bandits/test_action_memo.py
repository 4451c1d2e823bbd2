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
