"""Parquet logs read column by column: the token-space scoring of linear policies and
the reward model gives what the round-by-round path gives on the same log."""
import math
import os

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from bandits import Feedback, dsjson, make_policy
import importlib
import json
from replay import ParquetLog, candidate_from_mapping, evaluate, write_parquet
from replay.logs import concat
from replay.parquet_layout import context_features, row
from replay.readers import DSJSONLog
from replay.sources import open_log

SETS = [[{"id": f"item-{j}", "features": {"item": {"kind": f"k{j % 3}", "q": j / 7}}}
         for j in range(k)] for k in (4, 6, 6)]
SETS[2] = SETS[2][::-1]  # the same items in another order: another action set


def context(rng, i):
    x = rng.normal(size=4).round(3)
    ctx = {"user": {f"f{j}": float(v) for j, v in enumerate(x)},
           "device": {"os": "ios" if x[0] > 0 else "android", "beta": bool(i % 2)},
           "tags": ["a", "b"] if i % 3 else ["c"], "hour": i % 24, "_meta": {"x": 1}}
    if i % 5 == 0:
        ctx["user"]["segment"] = f"s{i % 4}"
    return ctx


def write_log(path, n, seed=0, days=1, embedding_every=0):
    rng = np.random.default_rng(seed)
    with open(path, "wb") as fh:
        for i in range(n):
            actions = SETS[i % 3]
            k = len(actions)
            ctx = context(rng, i)
            if embedding_every and i % embedding_every == 0:
                ctx["user"]["vec"] = [0.5, 1.5]
            pmf = rng.dirichlet(np.ones(k)) * 0.8 + 0.2 / k
            chosen = int(rng.choice(k, p=pmf))
            order = [chosen] + [j for j in range(k) if j != chosen]
            event = dsjson.decision_event(
                loop="t", event_id=f"ev-{i}", epoch_s=1_699_920_000 + i * 86_400 * days / n, context=ctx,
                actions=[(a["id"], a["features"]) for a in actions], order=order, pmf=pmf,
                policy="epsilon_greedy", version=1, deferred=False)
            reward = float(rng.random() < 0.2 + 0.5 * (chosen == 0) * (ctx["user"]["f1"] > 0))
            fh.write(dsjson.dumps(dsjson.with_label(event, reward)) + b"\n")


def trained(spec, rounds, n=800):
    policy = make_policy(spec)
    policy.learn([Feedback(c, a, int(k), float(p), float(r)) for c, a, k, p, r in zip(
        rounds.contexts[:n], rounds.actions[:n], rounds.chosen[:n], rounds.propensities[:n],
        rounds.rewards[:n])])
    return policy


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cols")
    path = str(tmp / "log.json")
    write_log(path, 3_000, days=3)
    rounds = concat(list(DSJSONLog(path).chunks()))
    write_parquet(rounds, str(tmp / "log.parquet"))
    write_parquet(rounds, str(tmp / "by-day"))
    for spec, name in [({"type": "linucb", "alpha": 0.7}, "shared"),
                       ({"type": "linucb", "alpha": 0.4, "model": "disjoint"}, "disjoint"),
                       ({"type": "epsilon_greedy", "epsilon": 0.2}, "greedy")]:
        (tmp / f"{name}.bin").write_bytes(trained(spec, rounds).to_bytes())
    return tmp, rounds


def candidates(tmp):
    toml = str(tmp / "c.toml")
    return [candidate_from_mapping({"snapshot": f"{name}.bin", "name": name}, toml)
            for name in ("shared", "disjoint", "greedy")]


def max_diff(a, b):
    assert [(r["policy"], r["estimator"]) for r in a.rows] == [(r["policy"], r["estimator"]) for r in b.rows]
    diffs = [abs(x[f] - y[f]) for x, y in zip(a.rows, b.rows) for f in ("value", "low", "high", "ess")]
    return max(diffs)


@pytest.mark.parametrize("log", ["log.parquet", "by-day"])
def test_token_space_equals_round_by_round(logs, log, monkeypatch):
    tmp, _ = logs
    rows = evaluate(DSJSONLog(str(tmp / "log.json")), candidates(tmp))
    source = open_log(str(tmp / log))
    assert isinstance(source, ParquetLog)
    scored = []
    evaluate_module = importlib.import_module("replay.evaluate")
    real = evaluate_module.policy_pmf
    monkeypatch.setattr(evaluate_module, "policy_pmf",
                        lambda policy, *a: scored.append(len(a[2])) or real(policy, *a))
    cols = evaluate(source, candidates(tmp))
    assert sum(scored) == 3 * 3_000  # every round of every candidate in token space
    assert max_diff(rows, cols) <= 1e-9
    assert rows.overlap == cols.overlap
    assert (rows.rounds, cols.rounds) == (3_000, 3_000)
    lin = {r["estimator"]: r["value"] for r in cols.rows if r["policy"] == "shared"}
    logged = {r["estimator"]: r["value"] for r in cols.rows if r["policy"] == "logging"}
    assert lin["dr"] != pytest.approx(logged["dr"], abs=1e-3)  # the candidate is not the logger


def test_chunks_really_carry_token_columns(logs):
    tmp, rounds = logs
    chunks = list(open_log(str(tmp / "log.parquet")).chunks(1_000))
    assert all(c.columns is not None for c in chunks)
    cols = chunks[0].columns
    assert ("device", "os", "ios") in cols.tokens and ("", "tags", "a") in cols.tokens
    assert ("", "hour", None) in cols.tokens and ("device", "beta", None) in cols.tokens
    assert len(cols.action_sets) >= 3
    first = concat(chunks)
    assert list(first.event_ids) == list(rounds.event_ids)
    assert list(first.contexts) == list(rounds.contexts)  # read back from the JSON on demand
    assert [list(a) for a in first.actions] == [list(a) for a in rounds.actions]


def test_partitions_by_day_and_files_are_shards(logs):
    tmp, _ = logs
    days = sorted(os.listdir(tmp / "by-day"))
    assert days == ["day=2023-11-14", "day=2023-11-15", "day=2023-11-16"]
    source = ParquetLog(str(tmp / "by-day"))
    assert [os.path.basename(os.path.dirname(f)) for f in source.files()] == days
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in source.files()) == 3_000


def test_a_context_the_columns_cannot_hold_is_read_from_its_json(tmp_path):
    path = str(tmp_path / "log.json")
    write_log(path, 1_200, seed=4, embedding_every=7)
    rounds = concat(list(DSJSONLog(path).chunks()))
    write_parquet(rounds, str(tmp_path / "log.parquet"))
    table = pq.read_table(str(tmp_path / "log.parquet"), columns=["context_features"])
    assert table.column(0).null_count == len(range(0, 1_200, 7))
    spec = {"type": "linucb", "alpha": 0.5,
            "featurizer": {"context_dense": {"user.vec": 2}}}
    (tmp_path / "p.bin").write_bytes(trained(spec, rounds).to_bytes())
    cands = lambda: [candidate_from_mapping({"snapshot": "p.bin", "name": "p"}, str(tmp_path / "c.toml"))]  # noqa: E731
    a = evaluate(DSJSONLog(path), cands())
    b = evaluate(open_log(str(tmp_path / "log.parquet")), cands())
    assert max_diff(a, b) <= 1e-9


def test_bad_rows_are_counted_with_their_row_and_skipped(tmp_path):
    good = row("e1", None, {"u": {"x": 1.0}}, [{"id": "a", "features": {}}, {"id": "b", "features": {}}],
               0, 0.5, 1.0, [0.5, 0.5])
    bad = [dict(good, event_id="e2", pmf=[0.9, 0.9]), dict(good, event_id="e3", chosen=5),
           dict(good, event_id="e4", propensity=0.0), dict(good, event_id="e5", actions="[1"),
           dict(good, event_id="e6", reward=None), dict(good, event_id="e7", pmf=[1.0])]
    from replay.parquet_layout import LogWriter
    writer = LogWriter(str(tmp_path / "x.parquet"), partitioned=False)
    for r in [good] + bad + [dict(good, event_id="e8")]:
        writer.write(r)
    writer.close()
    source = open_log(str(tmp_path / "x.parquet"))
    rounds = concat(list(source.chunks()))
    assert list(rounds.event_ids) == ["e1", "e8"]
    report = source.report
    assert (report.records, report.rounds, report.unrewarded, report.malformed) == (8, 2, 1, 5)
    assert sorted(report.problems) == [
        ("row 2", "pmf: must be probabilities summing to 1"),
        ("row 3", "chosen: must be an action index"),
        ("row 4", "propensity: must be in (0, 1]"),
        ("row 5", 'actions: must be a JSON list of {"id", "features"} objects with distinct ids'),
        ("row 7", "pmf: must hold one probability per action")]


def test_context_features_flatten_what_the_featurizer_reads():
    ctx = {"u": {"n": 2, "zero": 0, "s": "x", "bag": ["p", "q"], "none": None, "_m": 1, "t": True},
           "loose": 1.5, "_meta": {"a": 1}}
    assert context_features(ctx) == [("u", "n", None, 2.0), ("u", "zero", None, 0.0), ("u", "s", "x", 1.0),
                                     ("u", "bag", "p", 1.0), ("u", "bag", "q", 1.0),
                                     ("u", "t", None, 1.0), ("", "loose", None, 1.5)]
    assert context_features({"u": {"deep": {"x": 1}}}) is None
    assert context_features({"u": {"big": 1e300}}) is None
    assert context_features({"u": {"empty": []}}) is None
    assert math.isclose(orjson.loads(row("e", None, ctx, [], 0, 1.0, 0.0, [])["context"])["loose"], 1.5)


def _rows(n, actions, seed=0, ctx=None):
    rng = np.random.default_rng(seed)
    k = len(actions)
    return [row(f"e{i}", f"2026-01-{1 + i * 3 // n:02d}T00:00:00Z",
                ctx(i) if ctx else {"u": {f"f{j}": float(v) for j, v in enumerate(rng.normal(size=3))}},
                actions, i % k, 1 / k, float(rng.random() < 0.4), [1 / k] * k) for i in range(n)]


def _write(path, rows, partitioned=False):
    from replay.parquet_layout import LogWriter
    writer = LogWriter(path, partitioned)
    for r in rows:
        writer.write(r)
    writer.close()


def _both(path, make):
    """The evaluation in token space and, the same log, round by round."""
    evaluate_module = importlib.import_module("replay.evaluate")
    columnar = evaluate(open_log(path), make())
    original = evaluate_module._Run._columnar
    evaluate_module._Run._columnar = lambda self, rounds: False
    try:
        rows = evaluate(open_log(path), make())
    finally:
        evaluate_module._Run._columnar = original
    return columnar, rows


def test_arms_never_learned_tie_exactly_as_round_by_round(tmp_path):
    acts = [{"id": f"x{j}", "features": {}} for j in range(6)]
    path = str(tmp_path / "t.parquet")
    rows = _rows(600, acts, seed=1)
    _write(path, rows)
    rounds = concat(list(open_log(path).chunks()))
    policy = make_policy({"type": "linucb", "alpha": 1.0, "model": "disjoint"})
    policy.learn([Feedback(rounds.contexts[i], list(rounds.actions[i]), i % 2, 0.5,
                           float(rounds.rewards[i])) for i in range(100)])  # arms x0, x1 only
    (tmp_path / "p.bin").write_bytes(policy.to_bytes())
    make = lambda: [candidate_from_mapping({"snapshot": "p.bin", "name": "p"}, str(tmp_path / "c.toml"))]  # noqa: E731
    a, b = _both(path, make)
    assert max_diff(a, b) <= 1e-9


def test_refused_action_features_drop_their_rows_by_name(tmp_path):
    good = [{"id": "a", "features": {"i": {"q": 1.0}}}, {"id": "b", "features": {"i": {"q": 2.0}}}]
    bad = [{"id": "a", "features": {"i": {"v": [1.0, 2.0]}}}, {"id": "b", "features": {}}]
    rows = _rows(200, good)
    rows[5] = _rows(6, bad)[5]
    path = str(tmp_path / "t.parquet")
    _write(path, rows)
    make = lambda: [candidate_from_mapping({"policy": {"type": "linucb"}, "name": "p"}, str(tmp_path / "c.toml"))]  # noqa: E731
    a, b = _both(path, make)
    assert a.dropped == b.dropped and [w for w, _ in a.dropped] == ["row 6"]
    assert a.rounds == 199 and max_diff(a, b) <= 1e-9


def test_many_distinct_tokens_are_read_round_by_round(tmp_path):
    acts = [{"id": "a", "features": {}}, {"id": "b", "features": {}}]
    path = str(tmp_path / "t.parquet")
    _write(path, _rows(300, acts, ctx=lambda i: {"user": {"id": f"u{i}", "x": 1.0}}))
    chunks = list(open_log(path).chunks())
    assert [c.columns for c in chunks] == [None]  # 301 tokens: no n × U matrix is built
    make = lambda: [candidate_from_mapping({"policy": {"type": "linucb"}, "name": "p"}, str(tmp_path / "c.toml"))]  # noqa: E731
    assert max_diff(*_both(path, make)) == 0.0


def test_small_row_groups_and_a_later_file_without_feature_columns(tmp_path):
    import pyarrow as pa

    from replay.parquet_layout import schema
    acts = [{"id": "a", "features": {}}, {"id": "b", "features": {}}, {"id": "c", "features": {}}]
    rows = _rows(900, acts, seed=3)
    (tmp_path / "log" / "day=1").mkdir(parents=True)
    (tmp_path / "log" / "day=2").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:450], schema()), str(tmp_path / "log/day=1/p.parquet"),
                   row_group_size=70)
    old = pa.Table.from_pylist(rows[450:], schema()).drop_columns(["context_features"])
    pq.write_table(old, str(tmp_path / "log/day=2/p.parquet"))
    source = open_log(str(tmp_path / "log"))
    chunks = list(source.chunks(25_000))
    assert sum(len(c) for c in chunks) == 900 and chunks[0].columns is not None
    assert chunks[-1].columns is None  # read from the JSON
    make = lambda: [candidate_from_mapping({"policy": {"type": "epsilon_greedy"}, "name": "p"}, str(tmp_path / "c.toml"))]  # noqa: E731
    assert max_diff(*_both(str(tmp_path / "log"), make)) <= 1e-9


def test_days_back_and_forth_share_a_file_and_a_day_come_back_late_gets_another(tmp_path):
    acts = [{"id": "a", "features": {}}]
    rows = [row(f"e{i}", f"2026-01-0{day}T23:59:59Z", {}, acts, 0, 1.0, 1.0, [1.0])
            for i, day in enumerate([1, 2, 1, 2, 1, 3, 4, 5, 6])]  # clocks around midnight
    rows.append(dict(rows[0], event_id="late"))  # day 1 again, its file closed since
    _write(str(tmp_path / "log"), rows, partitioned=True)
    found = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "log")
                   for d, _, fs in os.walk(tmp_path / "log") for f in fs)
    assert found == ["day=2026-01-01/part-00000.parquet", "day=2026-01-01/part-00001.parquet"] + [
        f"day=2026-01-0{d}/part-00000.parquet" for d in range(2, 7)]
    assert pq.read_table(str(tmp_path / "log")).num_rows == 10


def test_limit_counts_only_the_rows_it_read(tmp_path):
    acts = [{"id": "a", "features": {}}, {"id": "b", "features": {}}]
    rows = _rows(100, acts)
    for r in rows[::3]:
        r["reward"] = None
    path = str(tmp_path / "t.parquet")
    _write(path, rows)
    for size in (7, 1_000):
        source = open_log(path)
        got = concat(list(source.chunks(size, limit=20)))
        assert len(got) == 20 and list(got.event_ids)[-1] == "e29"
        assert (source.report.records, source.report.unrewarded) == (30, 10)
        json.dumps(source.report.to_dict())  # plain ints: the JSON result takes them
