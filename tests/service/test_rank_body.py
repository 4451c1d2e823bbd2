"""The typed decoding of rank bodies takes only what the worded path takes, with equal
values; everything else is left to the worded path (and its messages)."""
import json

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from bandits import BanditError
from bandits.inputs import normalize_actions
from service.api.rank_body import typed_rank
from service.api.requests import parse_body, parse_rank
from service.config import Limits
from service.errors import ApiError
from service.testing.workload import workload

LIMITS = Limits(max_actions=50, max_features=8, max_string_length=16)


def worded(raw: bytes, limits: Limits):
    """What the worded path makes of ``raw``: ``(request, pairs)``, or None if refused."""
    try:
        req = parse_rank(parse_body(raw, "application/json", 10 ** 7), limits)
        pairs = None if req.actions is None else normalize_actions(req.actions)
    except (ApiError, BanditError):
        return None
    return req, pairs


def same_or_left(raw: bytes, limits: Limits = LIMITS) -> bool:
    """True when the typed path leaves ``raw`` to the worded one; otherwise check that
    both agree, to the type of every value, and return False."""
    typed = typed_rank(raw, limits)
    if typed is None:
        return True
    out = worded(raw, limits)
    assert out is not None, f"the typed path took a body the worded path refuses: {raw!r}"
    req, pairs = out
    assert orjson.dumps(typed.context) == orjson.dumps(req.context)
    assert orjson.dumps(typed.pairs) == orjson.dumps(pairs)
    assert orjson.dumps(normalize_actions(typed.actions) if typed.actions else None) == orjson.dumps(pairs)
    for name in ("event_id", "defer", "exclude", "k", "session_id", "slots", "explain"):
        assert getattr(typed, name) == getattr(req, name), name
        assert type(getattr(typed, name)) is type(getattr(req, name)), name
    return False


def test_the_usual_bodies_take_the_typed_path_with_equal_values():
    limits = Limits()
    for ctx, actions, _, _ in workload(100, seed=3):
        body = {"context": ctx, "actions": actions, "event_id": "e-1", "k": 3, "explain": True}
        assert not same_or_left(json.dumps(body).encode(), limits)


BIG = "x" * 17
CASES = [
    # within the types and limits: typed
    ({"context": {"u": {"a": 1, "b": -0.0, "c": True, "d": None, "e": ["s", 2]}}, "actions": ["a"]}, False),
    ({"context": {"u": {"a": 1}, "loose": "v"}, "actions": [{"id": "a", "features": None}]}, False),
    ({"context": None, "actions": [{"id": "a"}, "b"], "defer": True, "explain": 5}, False),
    ({"context": {"u": {"a": 9223372036854775807}}}, False),
    # left to the worded path (whether it accepts them or not)
    ({"context": {"u": {"a": 9223372036854775808}}}, True),
    ({"context": {"u": {"a": 18446744073709551616}}}, True),
    ({"context": {"u": {"a": {"deep": 1}}}}, True),
    ({"context": {"u": {"a": [None]}}}, True),
    ({"context": [], "actions": ["a"]}, True),
    ({"actions": []}, True),
    ({"actions": ["a", "a"]}, True),
    ({"actions": [""]}, True),
    ({"actions": [{"id": "a", "feature": {}}]}, True),
    ({"actions": [{"id": 1}]}, True),
    ({"actions": [{"id": "a", "features": {"ns": 1}}]}, True),
    ({"actions": ["a"], "exclude": []}, True),
    ({"actions": ["a"], "slots": [{"id": "s"}]}, True),
    ({"actions": ["a"], "explain": 0}, True),
    ({"actions": ["a"], "explain": 1001}, True),
    ({"actions": ["a"], "k": 0}, True),
    ({"actions": ["a"], "k": True}, True),
    ({"actions": ["a"], "k": 18446744073709551616}, True),
    ({"actions": ["a"], "k": 9223372036854775808}, True),
    ({"actions": ["a"], "defer": "yes"}, True),
    ({"actions": ["a"], "event_id": "no spaces"}, True),
    ({"actions": ["a"], "session_id": "s/1"}, True),
    ({"actions": ["a"], "unknown": 1}, True),
    ({"context": {"u": {BIG: 1}}}, True),
    ({"context": {"u": {"a": BIG}}}, True),
    ({"context": {"u": {str(i): i for i in range(9)}}}, True),
    ({"actions": [f"a{i}" for i in range(51)]}, True),
]


@pytest.mark.parametrize("body, left", CASES)
def test_a_body_is_typed_only_within_the_types_and_limits(body, left):
    assert same_or_left(json.dumps(body).encode()) is left


@pytest.mark.parametrize("raw", [b'{"context": {"u": {"a": 1e400}}}', b'{"context": {"u": {"a": NaN}}}',
                                 b'{"context": {"u": {"a": "\\ud800"}}}', b'[1]', b'', b'{"actions": ["a"]',
                                 b'{"event_id": "a", "event_id": "b b"}', b'{"actions": ["\xff"]}'])
def test_what_is_not_json_for_orjson_is_left_to_the_worded_path(raw):
    assert same_or_left(raw)


def test_a_small_max_depth_leaves_every_body_to_the_worded_path():
    assert typed_rank(b'{"actions": ["a"]}', Limits(max_depth=5)) is None


def test_one_feature_per_object_leaves_every_body_to_the_worded_path():
    """The worded path may count an action object's two keys against max_features."""
    body = b'{"context": {"x": 1}, "actions": [{"id": "a", "features": {}}]}'
    assert typed_rank(body, Limits(max_features=1)) is None and worded(body, Limits(max_features=1)) is None


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=18), inner, max_size=9)),
                     max_leaves=25)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(context=trees, actions=st.one_of(st.none(), st.lists(st.one_of(
    st.text(max_size=18), st.fixed_dictionaries({"id": st.text(max_size=18)}, optional={"features": trees})),
    max_size=5)), extra=st.dictionaries(st.sampled_from(["k", "defer", "explain", "event_id"]), scalars))
def test_random_bodies_are_typed_only_as_the_worded_path_reads_them(context, actions, extra):
    same_or_left(json.dumps({"context": context, "actions": actions, **extra}).encode())


@pytest.mark.parametrize("plugin, expected", [("Uniform", [0.5, 0.5]), ("Pinned", [0.0, 1.0])])
def test_a_plugin_with_its_own_decide_is_asked_through_it(r, plugin, expected):
    """A plugin without decide_pairs, or that overrides decide, gets the actions."""
    from service.app import create_app
    from service.config import parse_config

    config = parse_config({"loops": {"u": {"policy": {"type": f"tests.bandits.plugin_policy:{plugin}"}}}})
    res = create_app(config, r).test_client().post("/v1/loops/u/rank", json={"actions": ["a", {"id": "b"}]})
    assert res.status_code == 200, res.get_json()
    assert sorted((x["id"], x["probability"]) for x in res.get_json()["ranking"]) == list(zip("ab", expected))
