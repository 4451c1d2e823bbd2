"""Logs in Vowpal Wabbit's own DSJSON layouts (what teams bring from VW and
Personalizer): each fixture line is first checked with VW's parser, then read by
replay with the expected counts."""
import json

import numpy as np
import pytest
import vowpalwabbit

from replay.logs import MULTI_SLOT, concat
from replay.sources import open_log

MULTI = [{"TAction": {"topic": "sports"}}, {"TAction": {"topic": "politics"}},
         {"TAction": {"topic": "music"}}]
DS = {  # a decision-service line: label first, outcomes, VWState
    "_label_cost": -1.0, "_label_probability": 0.8, "_label_Action": 2, "_labelIndex": 1,
    "o": [{"v": 1.0, "EventId": "ds-1", "ActionTaken": False}],
    "Timestamp": "2024-01-01T00:00:00.000Z", "Version": "1", "EventId": "ds-1",
    "a": [2, 1, 3], "c": {"GUser": {"id": "a", "major": "eng"}, "_multi": MULTI},
    "p": [0.8, 0.1, 0.1], "VWState": {"m": "abc/def"}}
PLAIN = {  # plain CB: the label's cost, probability and index only; no o, no Timestamp
    "_label_cost": 0.5, "_label_probability": 0.1, "_labelIndex": 2, "Version": "1",
    "EventId": "plain-1", "a": [1, 3, 2], "c": {"u": {"x": 1}, "_multi": MULTI}, "p": [0.8, 0.1, 0.1]}
NO_SHARED = {"_label_cost": -2.0, "_label_probability": 0.5, "_label_Action": 1, "_labelIndex": 0,
             "Version": "1", "EventId": "ns-1", "a": [1, 2], "c": {"_multi": MULTI[:2]}, "p": [0.5, 0.5]}
DEFAULT_NS = {  # features straight in c: VW's default namespace
    "_label_cost": 0.0, "_label_probability": 0.9, "_label_Action": 1, "_labelIndex": 0,
    "Version": "1", "EventId": "def-1", "a": [1, 2], "c": {"age": 31, "city": "Köln",
                                                         "_multi": [{"x": 1}, {"x": 2}]},
    "p": [0.9, 0.1]}
ZEROS = {"_label_cost": -1.0, "_label_probability": 0.7, "_label_Action": 2, "_labelIndex": 1,
         "Version": "1", "EventId": "zero-1", "a": [2, 1], "c": {"u": {"x": 0, "y": 0.0},
                                                             "_multi": [{"i": {"x": 0}}, {"i": {"x": 1}}]},
         "p": [0.7, 0.3]}
NO_ID = {"_label_cost": -1.0, "_label_probability": 0.6, "_label_Action": 1, "_labelIndex": 0,
         "Version": "1", "a": [1, 2], "c": {"u": {"x": 1}, "_multi": MULTI[:2]}, "p": [0.6, 0.4]}
SKIP = {**DS, "EventId": "skip-1", "_skipLearn": True}
UNREWARDED = {k: v for k, v in DS.items() if not k.startswith("_label") and k != "o"} | {"EventId": "u-1"}
CCB = {"Timestamp": "2024-01-01T00:00:01.000Z", "Version": "1", "EventId": "ccb-1",
       "c": {"s": {"user": "a"}, "_multi": MULTI,
             "_slots": [{"_id": "top", "_inc": [0, 1]}, {"_id": "bottom"}]},
       "_outcomes": [{"_id": "top", "_label_cost": -1.0, "_a": [1, 0], "_p": [0.8, 0.2]},
                     {"_id": "bottom", "_label_cost": 0.0, "_a": [2], "_p": [1.0]}],
       "VWState": {"m": "N/A"}}
SLATES = {"_label_cost": 1.0, "_outcomes": [{"_a": 0, "_p": 0.8}, {"_a": 2, "_p": 0.6}],
          "Version": "1", "EventId": "slates-1",
          "c": {"s": {"x": 1}, "_multi": [{"_slot_id": 0, "a": {"x": 1}}, {"_slot_id": 0, "a": {"x": 2}},
                                          {"_slot_id": 1, "a": {"x": 3}}],
                "_slots": [{"s": {"slot": "a"}}, {"s": {"slot": "b"}}]}}
CB_LINES = [DS, PLAIN, NO_SHARED, DEFAULT_NS, ZEROS, NO_ID]


@pytest.mark.parametrize("line", CB_LINES, ids=lambda e: e.get("EventId", "no-id"))
def test_fixture_lines_are_what_vw_reads(line):
    vw = vowpalwabbit.Workspace("--cb_explore_adf --dsjson --quiet")
    examples = vw.parse(json.dumps(line), vowpalwabbit.LabelType.CONTEXTUAL_BANDIT)
    k = len(line["c"]["_multi"])
    assert len(examples) == 1 + k
    labelled = [i for i, ex in enumerate(examples[1:]) if ex.get_cbandits_num_costs()]
    assert labelled == [line["_labelIndex"]]
    vw.finish_example(examples)
    vw.finish()


def test_vw_layouts_are_read_with_the_expected_counts(tmp_path):
    path = tmp_path / "vw.json"
    path.write_text("\n".join(json.dumps(e) for e in CB_LINES + [SKIP, UNREWARDED, CCB, SLATES]) + "\n")
    source = open_log(str(path))
    rounds = concat(list(source.chunks()))
    report = source.report
    assert (report.records, report.rounds, report.unrewarded, report.skipped, report.unsupported,
            report.malformed) == (10, 6, 1, 1, 2, 0)
    assert report.reasons == {MULTI_SLOT: 2}
    assert rounds.event_ids == ["ds-1", "plain-1", "ns-1", "def-1", "zero-1", "vw.json:6"]
    assert rounds.chosen.tolist() == [1, 2, 0, 0, 1, 0]
    assert rounds.propensities.tolist() == [0.8, 0.1, 0.5, 0.9, 0.7, 0.6]
    assert rounds.rewards.tolist() == [1.0, -0.5, 2.0, -0.0, 1.0, 1.0]
    assert rounds.contexts[2] == {} and rounds.contexts[3] == {"age": 31, "city": "Köln"}
    assert rounds.contexts[4] == {"u": {"x": 0, "y": 0.0}}
    assert rounds.actions[3] == [{"id": "1", "features": {"x": 1}}, {"id": "2", "features": {"x": 2}}]
    np.testing.assert_array_equal(rounds.logging_pmf[1], [0.8, 0.1, 0.1])
    assert "1 skipped (_skipLearn), 2 unsupported" in report.summary()
    assert f"2 unsupported: {MULTI_SLOT}" in report.summary()
