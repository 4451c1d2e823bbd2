"""The log layout: what VW sees in ``c``, and that decoding gives back exactly what the
policy decided on, for every kind of feature a request may hold."""
import copy

import numpy as np
import orjson
import pytest

from bandits import BanditError, Featurizer, dsjson
from bandits.errors import LogFormatError

CONTEXT = {"user": {"country": "FR", "age": 31, "tags": ["a", "b", "a"], "emb": [0.5, 1.0],
                    "none": None, "_debug": {"x": 1}, "empty": []},
           "tags": ["top"], "plain": 1.5, "_session": {"step": 2}, "_tag": "t", "_multi": [1]}
ACTIONS = [("x", {}), ("y", {"item": {"genres": ["drama"], "_sku": 7}, "_tag": "y"}),
           ("z", {"a_id": {"own": 2.0}, "price": 3.0})]


def _event(context=CONTEXT, actions=ACTIONS, memo=None):
    return dsjson.decision_event(loop="l", event_id="e", epoch_s=1.7e9, context=context,
                                 actions=actions, order=[2, 0, 1], pmf=[0.2, 0.3, 0.5],
                                 policy="p", version=1, deferred=False, memo=memo)


def test_vw_sees_bags_as_counts_no_metadata_and_each_action_id():
    c = _event()["c"]
    assert c == {"user": {"country": "FR", "age": 31, "tags": {"a": 2, "b": 1}, "emb": [0.5, 1.0],
                          "none": None, "empty": []},
                 "tags": {"top": 1}, "plain": 1.5,
                 "_multi": [{"a_id": {"x": 1}}, {"item": {"genres": {"drama": 1}}, "a_id": {"y": 1}},
                            {"price": 3.0, "a_id": {"z": 1}}]}


def test_decode_gives_back_the_request_exactly_and_featurizes_identically():
    before = copy.deepcopy((CONTEXT, ACTIONS))
    event = orjson.loads(dsjson.dumps(dsjson.with_label(_event(), 1.0)))
    context, pairs = dsjson.decode(event)
    assert (context, pairs) == (CONTEXT, ACTIONS) == before
    f = Featurizer(context_dense={"user.emb": 2})
    X = f.transform(CONTEXT, [{"id": a, "features": x} for a, x in ACTIONS]).X
    assert np.array_equal(f.transform(context, [{"id": a, "features": x} for a, x in pairs]).X, X)


def test_decode_leaves_the_event_alone_unless_it_owns_it():
    event = orjson.loads(dsjson.dumps(_event()))
    kept = copy.deepcopy(event)
    assert dsjson.decode(event) == (CONTEXT, ACTIONS) and event == kept
    assert dsjson.decode(event, own=True) == (CONTEXT, ACTIONS) and event != kept


def test_a_plain_request_needs_no_orig():
    event = _event({"u": {"x": 1}}, [("a", {"i": {"p": 1}}), ("b", {})])
    assert "orig" not in event
    assert dsjson.decode(event) == ({"u": {"x": 1}}, [("a", {"i": {"p": 1}}), ("b", {})])


def test_vw_own_logs_decode_with_positional_ids():
    event = {"c": {"u": {"x": 1}, "_multi": [{"a_id": {"1": 1}}, {}]}, "a": [1, 2], "p": [0.5, 0.5]}
    assert dsjson.decode(event) == ({"u": {"x": 1}}, [("1", {"a_id": {"1": 1}}), ("2", {})])


def test_the_action_memo_converts_once_and_follows_changed_features():
    memo = {}
    first = _event(memo=memo)["c"]["_multi"]
    assert _event(memo=memo)["c"]["_multi"][1] is first[1]
    changed = [ACTIONS[0], ("y", {"item": {"genres": ["comedy"]}}), ACTIONS[2]]
    event = _event(actions=changed, memo=memo)
    assert event["c"]["_multi"][1] == {"item": {"genres": {"comedy": 1}}, "a_id": {"y": 1}}
    assert dsjson.decode(event)[1] == changed


@pytest.mark.parametrize("reward", [1.0, 0.0, -2.5])
def test_the_label_comes_first_on_the_chosen_action(reward):
    event = dsjson.with_label(_event(), reward, "default")
    assert list(event)[:6] == ["_label_cost", "_label_probability", "_label_Action", "_labelIndex",
                               "o", "Timestamp"]
    assert (event["_label_cost"], event["_label_probability"], event["_label_Action"],
            event["_labelIndex"]) == (-reward, 0.5, 3, 2)
    assert event["o"] == [{"v": reward, "EventId": "e", "kind": "default"}]


def test_the_memo_keeps_the_value_each_request_sent():
    memo, first, second = {}, [("a", {"i": {"p": True}})], [("a", {"i": {"p": 1}})]
    _event(actions=first, memo=memo)
    event = orjson.loads(dsjson.dumps(_event(actions=second, memo=memo)))
    assert dsjson.decode(event)[1] == second and type(dsjson.decode(event)[1][0][1]["i"]["p"]) is int


def test_features_of_the_same_json_text_reuse_the_memo_and_others_do_not():
    """A request's actions are new objects every time: the memo matches them by their
    JSON text, so 1, 1.0 and true (equal in Python) each keep their own form."""
    memo = {}
    first = _event(actions=[("a", {"i": {"p": 1, "tags": ["x", "x"]}})], memo=memo)["c"]["_multi"][0]
    again = _event(actions=[("a", {"i": {"p": 1, "tags": ["x", "x"]}})], memo=memo)["c"]["_multi"][0]
    assert again is first and first == {"i": {"p": 1, "tags": {"x": 2}}, "a_id": {"a": 1}}
    for value in (1.0, True, 2):
        event = orjson.loads(dsjson.dumps(_event(actions=[("a", {"i": {"p": value, "tags": ["x", "x"]}})],
                                                 memo=memo)))
        sent = dsjson.decode(event)[1][0][1]["i"]["p"]
        assert sent == value and type(sent) is type(value)


def test_the_memo_is_cleared_past_its_bytes_of_text(monkeypatch):
    monkeypatch.setattr(dsjson, "MEMO_BYTES", 100)
    memo, big = {}, [(f"a{i}", {"i": {"text": "x" * 40}}) for i in range(3)]
    _event(actions=big[:2], memo=memo)
    assert {k for k in memo if type(k) is str} == {"a0", "a1"}  # 2 x 51 bytes: over 100
    _event(actions=big[2:], memo=memo)
    assert {k for k in memo if type(k) is str} == {"a2"}


@pytest.mark.parametrize("change, field", [
    (lambda e: e.pop("c"), "c._multi"),
    (lambda e: e["c"].update(_multi={}), "c._multi"),
    (lambda e: e.update(ActionIds=["x", "y"]), "ActionIds"),
    (lambda e: e.update(ActionIds=[["x"], "y", "z"]), "ActionIds"),
    (lambda e: e["c"]["_multi"].__setitem__(1, "y"), r"c._multi\[1\]"),
    (lambda e: e.update(orig=[1]), "orig"),
    (lambda e: e["orig"].update(actions={"-1": {}}), "orig.actions.-1"),
    (lambda e: e["orig"].update(actions={"3": {}}), "orig.actions.3"),
    (lambda e: e["orig"].update(actions={"1": "x"}), "orig.actions.1"),
])
def test_a_malformed_event_is_refused_naming_the_field(change, field):
    event = orjson.loads(dsjson.dumps(_event()))
    change(event)
    with pytest.raises(LogFormatError, match=f"^{field}"):
        dsjson.decode(event)
    with pytest.raises(BanditError):  # what the learner counts as unlearnable
        dsjson.to_feedback(event, 1.0)


def test_state_is_the_decoded_context():
    event = orjson.loads(dsjson.dumps(_event()))
    assert dsjson.state(event) == dsjson.decode(event)[0] == CONTEXT
