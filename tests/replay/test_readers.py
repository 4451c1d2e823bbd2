"""Readers: DSJSON (cbserve's and VW's), gzip and Parquet round-trip into the same
arrays; malformed records are counted with their location."""
import copy
import gzip

import numpy as np
import orjson
import pytest

from replay.errors import LogError
from replay.logs import BadEvent, concat, parse_event
from replay import ParquetLog, write_parquet
from replay.readers import DSJSONLog
from replay.sources import open_log
from replay.simulated import write_dsjson


def expected_arrays(events):
    """What the readers must produce, computed straight from the DSJSON objects."""
    out = {"event_ids": [], "chosen": [], "propensities": [], "rewards": [], "pmf": [],
           "contexts": [], "actions": []}
    for e in events:
        out["event_ids"].append(e["EventId"])
        out["chosen"].append(e["a"][0] - 1)
        out["propensities"].append(e["p"][0])
        out["rewards"].append(-e["_label_cost"])
        pmf = np.zeros(len(e["ActionIds"]))
        pmf[np.array(e["a"]) - 1] = e["p"]
        out["pmf"].append(pmf)
        out["contexts"].append({k: v for k, v in e["c"].items() if k != "_multi"})
        out["actions"].append([{"id": i, "features": {ns: v for ns, v in f.items() if ns != "a_id"}}
                               for i, f in zip(e["ActionIds"], e["c"]["_multi"])])  # the id feature off
    return out


def assert_same(rounds, events):
    exp = expected_arrays(events)
    assert rounds.event_ids == exp["event_ids"]
    assert rounds.chosen.tolist() == exp["chosen"]
    assert rounds.propensities.tolist() == exp["propensities"]
    assert rounds.rewards.tolist() == exp["rewards"]
    np.testing.assert_array_equal(rounds.logging_pmf, np.stack(exp["pmf"]))
    assert rounds.contexts == exp["contexts"]
    assert rounds.actions == exp["actions"]


@pytest.mark.parametrize("name", ["log.json", "log.json.gz"])
def test_dsjson_round_trip_in_chunks(tmp_path, events, name):
    path = str(tmp_path / name)
    write_dsjson(events, path)
    source = open_log(path)
    chunks = list(source.chunks(size=128))
    assert [len(c) for c in chunks] == [128, 128, 128, 128, 88]
    assert_same(concat(chunks), events)
    assert (source.report.records, source.report.rounds, source.report.malformed) == (600, 600, 0)
    again = concat(list(source.chunks(size=1000)))  # a second pass starts over
    assert again.event_ids == [e["EventId"] for e in events]
    assert len(concat(list(source.chunks(size=50, limit=120)))) == 120


def test_parquet_round_trip(tmp_path, events):
    path = str(tmp_path / "log.parquet")
    rounds = concat(list(DSJSONLog(_write(tmp_path, events)).chunks()))
    write_parquet(rounds, path)
    source = open_log(path)
    assert isinstance(source, ParquetLog)
    assert_same(concat(list(source.chunks(size=100))), events)


def test_parquet_missing_columns_is_a_clear_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = str(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"event_id": ["a"], "reward": [1.0]}), path)
    with pytest.raises(LogError, match="lacks the columns timestamp, context, actions"):
        open_log(path)


def test_malformed_lines_are_counted_with_line_numbers(tmp_path, events):
    good = [orjson.dumps(e) for e in events[:5]]
    no_multi = copy.deepcopy(events[5])
    del no_multi["c"]["_multi"]
    bad_sum = copy.deepcopy(events[6])
    bad_sum["p"] = [0.9] * len(bad_sum["p"])
    bad_index = copy.deepcopy(events[7])
    bad_index["a"][1] = 99
    unrewarded = {k: v for k, v in events[8].items() if not k.startswith("_label") and k != "o"}
    lines = [good[0], b"{not json", good[1], b"", orjson.dumps(no_multi), good[2],
             orjson.dumps(bad_sum), b"[1, 2]", orjson.dumps(bad_index), good[3],
             orjson.dumps(unrewarded), good[4]]
    path = tmp_path / "mixed.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = open_log(str(path))
    rounds = concat(list(source.chunks()))
    assert rounds.event_ids == [e["EventId"] for e in events[:5]]
    rep = source.report
    assert (rep.records, rep.rounds, rep.unrewarded, rep.malformed) == (11, 5, 1, 5)
    where = dict(rep.problems)
    assert "invalid JSON" in where["line 2"]
    assert "c._multi" in where["line 5"]
    assert "p: probabilities sum to" in where["line 7"]
    assert "event: must be a JSON object" in where["line 8"]
    assert "a: must be a non-empty list of 1-based action indices (1..5)" in where["line 9"]
    assert "line 9" in rep.summary()


def test_truncated_gzip_is_reported_not_raised(tmp_path, events):
    path = tmp_path / "cut.json.gz"
    data = gzip.compress(b"".join(orjson.dumps(e) + b"\n" for e in events))
    path.write_bytes(data[: len(data) // 2])
    source = open_log(str(path))
    rounds = concat(list(source.chunks()))
    assert 0 < len(rounds) < len(events)
    assert source.report.malformed >= 1
    assert any("unreadable from here on" in msg for _, msg in source.report.problems)


def test_vowpal_wabbit_dsjson_without_action_ids(tmp_path):
    lines = [
        {"_label_cost": -1.0, "_label_probability": 0.8, "_label_Action": 2, "_labelIndex": 1,
         "o": [{"v": 1.0, "EventId": "vw-1"}], "Timestamp": "2024-01-01T00:00:00.000Z",
         "Version": "1", "EventId": "vw-1", "a": [2, 1, 3], "p": [0.8, 0.1, 0.1],
         "c": {"GUser": {"id": "a", "major": "eng"}, "_multi": [
             {"TAction": {"topic": "sports"}}, {"TAction": {"topic": "politics"}},
             {"TAction": {"topic": "music"}}]}, "VWState": {"m": "abc/def"}},
        {"Version": "1", "EventId": "vw-2", "a": [1, 2, 3], "p": [0.8, 0.1, 0.1],
         "c": {"GUser": {"id": "b"}, "_multi": [{"TAction": {"topic": "sports"}},
                                                 {"TAction": {"topic": "politics"}},
                                                 {"TAction": {"topic": "music"}}]}},
    ]
    path = tmp_path / "vw.json"
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    source = open_log(str(path))
    rounds = concat(list(source.chunks()))
    assert rounds.event_ids == ["vw-1"]
    assert rounds.chosen.tolist() == [1] and rounds.propensities.tolist() == [0.8]
    assert rounds.rewards.tolist() == [1.0]
    assert [a["id"] for a in rounds.actions[0]] == ["1", "2", "3"]
    np.testing.assert_array_equal(rounds.logging_pmf, [[0.1, 0.8, 0.1]])
    assert source.report.unrewarded == 1


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(LogError, match="--log: no such file"):
        open_log(str(tmp_path / "nope.json"))


def _write(tmp_path, events):
    path = str(tmp_path / "src.json")
    write_dsjson(events, path)
    return path


def test_one_unpackable_pmf_leaves_the_rest_of_its_chunk(tmp_path, events):
    """Strings among the indices or probabilities are that line's problem: the other
    rounds of the chunk are kept, and a pmf written as strings is not taken as one."""
    text_p = copy.deepcopy(events[1])
    text_p["p"] = [str(x) for x in text_p["p"]]  # a pmf, but of strings
    text_a = copy.deepcopy(events[2])
    text_a["a"][1] = "2"
    lines = [orjson.dumps(events[0]), orjson.dumps(text_p), orjson.dumps(text_a), orjson.dumps(events[3])]
    path = tmp_path / "p.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = open_log(str(path))
    rounds = concat(list(source.chunks()))
    assert rounds.event_ids == [events[0]["EventId"], events[3]["EventId"]]
    where = dict(source.report.problems)
    assert "p: must be 5 probabilities in [0, 1]" in where["line 2"]
    assert "a: must be a non-empty list of 1-based action indices" in where["line 3"]


def test_integer_cost_too_large_for_a_float_is_a_bad_event(events):
    event = copy.deepcopy(events[0])
    event["_label_cost"] = 10 ** 400
    with pytest.raises(BadEvent, match="_label_cost: must be a finite number"):
        parse_event(event)
