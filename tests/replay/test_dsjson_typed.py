"""The DSJSON reader's typed decoding gives what parsing every line whole gives: the
same rounds, counts, messages and locations for good and bad lines alike, and the same
evaluation; contexts are parsed only when read."""
import copy
import gzip
import json
import os

import numpy as np
import orjson
import pytest

from bandits import make_policy
from replay import candidate_from_mapping, evaluate
from replay.dsjson_typed import _loads_deep
from replay.errors import BadEvent, EventError
from replay.logs import concat, parse_event
from replay.readers import DSJSONLog, LogSource, open_sniffed
from replay.simulated import simulate_log, write_dsjson


class WholeLineReader(LogSource):
    """Every line through ``orjson.loads`` and :func:`parse_event`: the reference."""

    def __init__(self, path):
        super().__init__(path)
        self.path = path

    def _items(self):
        number, name = 0, os.path.basename(self.path)
        with open_sniffed(self.path) as fh:
            try:
                for number, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        event = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        yield f"line {number}", BadEvent(f"invalid JSON: {exc}")
                        continue
                    try:
                        yield f"line {number}", parse_event(event, f"{name}:{number}")
                    except EventError as exc:
                        yield f"line {number}", exc
            except (OSError, EOFError) as exc:
                yield f"line {number + 1}", BadEvent(f"unreadable from here on: {exc}")


#: Stand for an integer beyond 64 bits (orjson reads it as a float, msgspec as an int)
#: and for a number beyond a double's range (which orjson refuses).
HUGE, BEYOND = 1234.5678, 8765.4321


def _variant(event, change):
    out = copy.deepcopy(event)
    change(out)
    return orjson.dumps(out).replace(b"1234.5678", b"1" + b"0" * 30).replace(b"8765.4321", b"1e400")


def _set(*path, value):
    def change(event):
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _drop(*path):
    def change(event):
        target = event
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


#: Each changes one field of a good event; the typed path must agree with the whole-line
#: path on every one (kept, counted apart, or refused with the same message).
CHANGES = {
    "no EventId": _drop("EventId"),
    "EventId null": _set("EventId", value=None),
    "EventId empty": _set("EventId", value=""),
    "EventId number": _set("EventId", value=5),
    "no c": _drop("c"),
    "c null": _set("c", value=None),
    "c list": _set("c", value=[1]),
    "no _multi": _drop("c", "_multi"),
    "_multi empty": _set("c", "_multi", value=[]),
    "_multi null": _set("c", "_multi", value=None),
    "_multi of numbers": _set("c", "_multi", value=[1, 2]),
    "_slots": _set("c", "_slots", value=[{"_id": "s"}]),
    "_slots null": _set("c", "_slots", value=None),
    "_outcomes": _set("_outcomes", value=[]),
    "skip": _set("_skipLearn", value=True),
    "no skip": _set("_skipLearn", value=False),
    "skip text": _set("_skipLearn", value="yes"),
    "skip and bad a": lambda e: e.update(_skipLearn=True, a="x"),
    "ActionIds short": lambda e: e["ActionIds"].pop(),
    "ActionIds null": _set("ActionIds", value=None),
    "ActionIds numbers": lambda e: e.update(ActionIds=list(range(len(e["ActionIds"])))),
    "orig list": _set("orig", value=[1]),
    "orig null": _set("orig", value=None),
    "orig empty": _set("orig", value={}),
    "orig bad index": _set("orig", value={"actions": {"99": {}}}),
    "orig context list": _set("orig", value={"context": [1]}),
    "orig fine": _set("orig", value={"context": {"x": {"tags": ["a", "b"]}},
                                     "actions": {"0": {"_k": 1}}}),
    "a text": _set("a", 1, value="2"),
    "a bool": _set("a", 1, value=True),
    "a float": lambda e: e["a"].__setitem__(0, float(e["a"][0])),
    "a empty": _set("a", value=[]),
    "a out of range": _set("a", 1, value=99),
    "a repeated": lambda e: e["a"].__setitem__(1, e["a"][0]),
    "a null": _set("a", value=None),
    "a short": lambda e: e["a"].pop(),
    "a huge": _set("a", 1, value=HUGE),
    "p text": lambda e: e.update(p=[str(x) for x in e["p"]]),
    "p bool": _set("p", 1, value=True),
    "p ints summing to 2": lambda e: e.update(p=[1] * len(e["p"])),
    "p sum": _set("p", 1, value=0.9),
    "p null": _set("p", value=None),
    "p negative": _set("p", 1, value=-0.1),
    "p huge": _set("p", 1, value=HUGE),
    "unrewarded": lambda e: [e.pop(k) for k in ("_label_cost", "_label_probability", "_labelIndex")],
    "unrewarded bad ActionIds": lambda e: [e.pop("_label_cost"), e["ActionIds"].pop()],
    "cost null": _set("_label_cost", value=None),
    "cost text": _set("_label_cost", value="1"),
    "cost int": _set("_label_cost", value=-1),
    "cost huge int": _set("_label_cost", value=HUGE),
    "cost beyond a double": _set("_label_cost", value=BEYOND),
    "index huge": _set("_labelIndex", value=HUGE),
    "index null": _set("_labelIndex", value=None),
    "index bool": _set("_labelIndex", value=True),
    "index float": _set("_labelIndex", value=1.0),
    "index out of range": _set("_labelIndex", value=99),
    "no index": _drop("_labelIndex"),
    "prob zero": _set("_label_probability", value=0),
    "prob above 1": _set("_label_probability", value=1.5),
    "prob null": _set("_label_probability", value=None),
    "prob int": _set("_label_probability", value=1),
    "no prob": _drop("_label_probability"),
    "timestamp number": _set("Timestamp", value=5),
    "timestamp null": _set("Timestamp", value=None),
    "no timestamp": _drop("Timestamp"),
    "event list": lambda e: None,
    "non-ASCII": _set("c", "city", value={"name": "Zürich ✓"}),
}


def _mixed_log(tmp_path, events, name="mixed.json"):
    lines = []
    for j, (label, change) in enumerate(CHANGES.items()):
        event = events[j % len(events)]
        lines.append(b"[1, 2]" if label == "event list" else _variant(event, change))
        lines.append(orjson.dumps(events[(j + 7) % len(events)]))
    good = orjson.dumps(events[0])
    lines += [b"", b"   ", b"{not json", good.replace(b'"c":{', b'"c":{"bad":"\xff",', 1),
              good.replace(b'"c":{', b'"c":{"s":"\\ud800",', 1),
              good.replace(b'"c":{', b'"c":{"deep":' + b"[" * 1010 + b"]" * 1010 + b",", 1),
              good.replace(b'"EventId"', b'"\\u0045ventId"', 1), good[:-1] + b',"a":[1]}',
              good + b" x", b"\xef\xbb\xbf" + good]
    path = tmp_path / name
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return str(path)


def _same_rounds(ours, reference):
    assert ours.event_ids == reference.event_ids
    assert ours.timestamps == reference.timestamps
    assert ours.where == reference.where
    for name in ("chosen", "propensities", "rewards", "logging_pmf", "n_actions"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(reference, name))
        assert getattr(ours, name).dtype == getattr(reference, name).dtype
    shallow = [j for j, c in enumerate(reference.contexts) if "deep" not in c]  # == recurses
    assert [ours.contexts[j] for j in shallow] == [reference.contexts[j] for j in shallow]
    assert [("deep" in c) for c in ours.contexts] == [("deep" in c) for c in reference.contexts]
    assert ours.actions == reference.actions


@pytest.mark.parametrize("name", ["mixed.json", "mixed.json.gz"])
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_every_line_reads_as_when_parsed_whole(tmp_path, events, name, size):
    path = _mixed_log(tmp_path, events, name)
    ours, reference = DSJSONLog(path), WholeLineReader(path)
    mine, theirs = list(ours.chunks(size)), list(reference.chunks(size))
    assert [len(c) for c in mine] == [len(c) for c in theirs]
    _same_rounds(concat(mine), concat(theirs))
    assert ours.report.to_dict() == {**reference.report.to_dict(), "source": path}
    assert ours.report.malformed > 30 and ours.report.skipped and ours.report.unrewarded


def test_limit_and_second_pass_agree(tmp_path, events):
    path = _mixed_log(tmp_path, events)
    ours, reference = DSJSONLog(path), WholeLineReader(path)
    for limit in (1, 25, 60):
        _same_rounds(concat(list(ours.chunks(10, limit))), concat(list(reference.chunks(10, limit))))
        assert ours.report.to_dict() == reference.report.to_dict()


def test_truncated_gzip_agrees(tmp_path, events):
    path = tmp_path / "cut.json.gz"
    data = gzip.compress(b"".join(orjson.dumps(e) + b"\n" for e in events))
    path.write_bytes(data[: len(data) // 2])
    ours, reference = DSJSONLog(str(path)), WholeLineReader(str(path))
    _same_rounds(concat(list(ours.chunks(50))), concat(list(reference.chunks(50))))
    assert ours.report.to_dict() == reference.report.to_dict()


def test_contexts_are_parsed_when_read_and_kept(tmp_path, events):
    path = str(tmp_path / "log.json")
    write_dsjson(events, path)
    chunk = next(DSJSONLog(path).chunks(100))
    store = chunk.contexts._get.__self__
    assert all(type(s) is bytes for s in store._sources)  # nothing parsed yet
    first = chunk.contexts[3]
    assert chunk.contexts[3] is first and chunk.actions[3] is chunk.actions[3]
    assert sum(type(s) is bytes for s in store._sources) == 99
    assert chunk.slice(3, 5).contexts[0] is first and chunk.take([3]).contexts[0] is first


def test_a_number_beyond_a_double_in_a_context_still_reads(tmp_path, events):
    """orjson refuses 1e400; the typed decoding skips it unread, and the context then
    holds it as inf (Python's json reads it) rather than failing when read."""
    line = orjson.dumps(events[0]).replace(b'"c":{', b'"c":{"big":{"x":1e400},', 1)
    path = tmp_path / "big.json"
    path.write_bytes(line + b"\n")
    rounds = concat(list(DSJSONLog(str(path)).chunks()))
    assert rounds.contexts[0]["big"] == {"x": float("inf")}


def test_a_line_read_again_has_room_for_the_nesting_the_typed_decoding_took():
    """A context read on demand is parsed deeper in the stack than the typed decoding
    ran: Python's parser gets room for any nesting msgspec accepts (up to 1,000)."""
    line = b'{"x": 1e400, "deep": ' + b"[" * 990 + b"]" * 990 + b"}"

    def deeper(n, parse):
        return deeper(n - 1, parse) if n else parse(line)

    with pytest.raises(RecursionError):
        deeper(60, json.loads)
    event = deeper(60, _loads_deep)
    assert event["x"] == float("inf") and type(event["deep"]) is list


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory, env):
    events = simulate_log(env, make_policy({"type": "epsilon_greedy", "epsilon": 0.5}), 1500, seed=9)
    events[10] = {**events[10], "p": [0.9] * len(events[10]["p"])}  # a bad pmf, dropped and named
    path = str(tmp_path_factory.mktemp("logs") / "sim.json.gz")
    write_dsjson(events, path)
    return path


def _candidates():
    return [candidate_from_mapping({"name": "linucb", "policy": {"type": "linucb", "alpha": 0.3}}),
            candidate_from_mapping({"name": "greedy", "policy": {"type": "epsilon_greedy", "epsilon": 0.05}}),
            candidate_from_mapping({"name": "replayed", "learn": "replay",
                                    "policy": {"type": "linucb", "alpha": 0.5}})]


@pytest.mark.parametrize("options", [{"train_fraction": 0.4}, {"ci": "bootstrap", "n_boot": 50},
                                     {"chunk_size": 97, "train_fraction": 0.3}])
def test_an_evaluation_gives_the_same_figures(sim_log, options):
    ours = evaluate(DSJSONLog(sim_log), _candidates(), **options).to_dict()
    reference = evaluate(WholeLineReader(sim_log), _candidates(), **options).to_dict()
    assert ours["log"]["source"] == reference["log"]["source"] == sim_log
    assert ours == reference
    assert ours["log"]["malformed"] == 1


def test_pmfs_and_actions_that_change_from_line_to_line(tmp_path, events):
    """Lines whose a, p, ActionIds and c._multi all differ, more of them than the reader
    remembers: each read as when parsed whole."""
    rng = np.random.default_rng(4)
    lines = []
    for j in range(1300):
        event = copy.deepcopy(events[j % len(events)])
        k = 2 + j % 4
        event["c"]["_multi"] = event["c"]["_multi"][:k]
        event["ActionIds"] = [f"x{j}-{i}" for i in range(k)]
        event["a"] = [int(i) + 1 for i in rng.permutation(k)]
        event["p"] = [float(x) for x in rng.dirichlet(np.ones(k)).round(6)]
        event["p"][0] = round(1.0 - sum(event["p"][1:]), 6)
        event["_labelIndex"], event["_label_probability"] = event["a"][0] - 1, event["p"][0]
        lines.append(orjson.dumps(event))
    path = tmp_path / "varied.json"
    path.write_bytes(b"\n".join(lines))
    ours, reference = DSJSONLog(str(path)), WholeLineReader(str(path))
    _same_rounds(concat(list(ours.chunks(300))), concat(list(reference.chunks(300))))
    assert ours.report.to_dict() == reference.report.to_dict()
    assert ours.report.rounds > 1000


@pytest.mark.parametrize("with_bad", [False, True])
def test_shared_lists_are_packed_as_when_each_is_its_own(with_bad):
    """pack_rounds works a pmf out once per distinct shared (a, p, K): same arrays and
    messages as with every row's lists its own."""
    from replay.logs import pack_rounds

    orders = [[1, 2, 3], [2, 1, 3], [3, 1, 2], [1, 2]]
    pmfs = [[0.5, 0.25, 0.25], [0.8, 0.1, 0.1], [0.6, 0.4]]
    if with_bad:
        orders.append([1, 1, 2])
        pmfs.append([0.9, 0.9, 0.1])
    rng = np.random.default_rng(2)
    rows = []
    for j in range(400):
        a = orders[rng.integers(len(orders))]
        fits = [q for q in pmfs if len(q) == len(a)]
        p = fits[rng.integers(len(fits))]
        rows.append((f"e{j}", None, {}, [{}] * (3 + j % 2), 0, 0.5, 1.0, a, p))
    where = [f"line {j + 1}" for j in range(len(rows))]
    columns = [list(c) for c in zip(*rows)]
    k = [len(r[3]) for r in rows]
    shared, problems = pack_rounds(columns, k, where, numeric=True)
    own, own_problems = pack_rounds([*columns[:7], [list(a) for a in columns[7]],
                                     [list(p) for p in columns[8]]], k, where)
    np.testing.assert_array_equal(shared.logging_pmf, own.logging_pmf)
    assert shared.event_ids == own.event_ids and problems == own_problems
    assert bool(problems) == with_bad
