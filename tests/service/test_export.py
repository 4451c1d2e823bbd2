"""`cbserve export`: DSJSON and Parquet files a reader takes back, and clean messages
for an output it cannot write; a loop's Redis log read as replay's source."""
import json

import pyarrow.parquet as pq
import pytest

from replay.errors import LogError
from replay.logs import concat
from replay.parquet_layout import COLUMNS as PARQUET_COLUMNS
from service.cli import main as cbserve
from service.export import RedisLog, open_log

from tests.conftest import RECS_ITEMS

CONTEXT = {"user": {"country": "FR", "age": 31.0, "tags": ["a", "b"]}, "device": {"os": "ios"}}


@pytest.fixture
def cfg(tmp_path, redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    path = tmp_path / "c.toml"
    path.write_text('[loops.recs]\npolicy = { type = "linucb", alpha = 0.5, epsilon = 0.05 }\n')
    return str(path)


def _decide(client, n, rewarded):
    """n decisions on 4 items each; the first ``rewarded`` get a reward of 0.5 each."""
    sent = []
    for i in range(n):
        actions = RECS_ITEMS[i % 20:i % 20 + 4]
        res = client.post("/v1/loops/recs/rank",
                          json={"context": CONTEXT, "actions": actions}).get_json()
        if i < rewarded:
            assert client.post(f"/v1/loops/recs/events/{res['event_id']}/reward",
                               json={"value": 0.5}).status_code == 200
        sent.append((actions, res))
    return sent


def test_parquet_export_holds_every_decision_in_the_layout_the_replay_reader_takes(
        client, cfg, tmp_path, capsys):
    sent = _decide(client, 12, rewarded=9)
    out = tmp_path / "recs.parquet"
    assert cbserve(["export", "--config", cfg, "--loop", "recs", "-o", str(out)]) == 0
    assert "exported 12 decisions (9 with rewards)" in capsys.readouterr().out
    table = pq.read_table(out)
    assert tuple(table.column_names) == PARQUET_COLUMNS
    assert table.num_rows == 12 and table.column("reward").null_count == 3
    source = open_log(str(out))
    rounds = list(source.chunks())
    assert sum(len(chunk) for chunk in rounds) == 9
    assert (source.report.rounds, source.report.unrewarded, source.report.malformed) == (9, 3, 0)
    actions, res = sent[0]
    row = table.slice(0, 1).to_pylist()[0]
    probability = {a["id"]: a["probability"] for a in res["ranking"]}
    assert row["event_id"] == res["event_id"]
    assert json.loads(row["context"]) == CONTEXT
    assert json.loads(row["actions"]) == actions
    assert row["chosen"] == [a["id"] for a in actions].index(res["chosen"])
    assert row["propensity"] == res["probability"] and row["reward"] == 0.5
    assert row["pmf"] == [probability[a["id"]] for a in actions]
    assert table.slice(11, 1).to_pylist()[0]["reward"] is None


def test_an_output_that_cannot_be_written_is_named_without_a_traceback(client, cfg, tmp_path, capsys):
    _decide(client, 2, rewarded=1)
    for name in ("x.json", "x.parquet"):
        path = tmp_path / "no" / "such" / name
        assert cbserve(["export", "--config", cfg, "--loop", "recs", "-o", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"cbserve: -o/--output: cannot write {path}: No such file or directory")
        assert "Traceback" not in err


def test_a_failed_export_leaves_the_earlier_file_as_it_was(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[loops.recs]\n')
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    for name in ("x.json", "x.parquet"):
        out = tmp_path / name
        out.write_text("an earlier export\n")
        assert cbserve(["export", "--config", str(path), "--loop", "recs", "-o", str(out)]) == 2
        assert "Redis unreachable" in capsys.readouterr().err
        assert out.read_text() == "an earlier export\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c.toml", "x.json", "x.parquet"][:2 + (name == "x.parquet")])


def test_parquet_without_pyarrow_says_how_to_get_it(client, cfg, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # as if not installed
    assert cbserve(["export", "--config", cfg, "--loop", "recs", "-o", str(tmp_path / "x.parquet")]) == 2
    assert "cbserve: -o/--output: a .parquet file needs pyarrow" in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()


def test_json_export_is_unchanged_by_the_parquet_path(client, cfg, tmp_path):
    _decide(client, 3, rewarded=2)
    out = tmp_path / "recs.json"
    assert cbserve(["export", "--config", cfg, "--loop", "recs", "-o", str(out)]) == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(events) == 3 and sum("_label_cost" in e for e in events) == 2


def test_redis_stream_written_by_the_service(client, redis_server):
    """Decisions made and rewarded over the API read back with what the API returned."""
    answers = []
    for i in range(30):
        ctx = {"user": {"age": 20 + i, "country": ["FR", "DE"][i % 2]}}
        res = client.post("/v1/loops/recs/rank", json={"context": ctx, "actions": RECS_ITEMS[:6]})
        body = res.get_json()
        if i % 3:
            client.post(f"/v1/loops/recs/events/{body['event_id']}/reward", json={"value": i / 10})
            answers.append((body, i / 10))
    source = open_log(redis_server.url, loop="recs")
    assert isinstance(source, RedisLog)
    rounds = concat(list(source.chunks(size=7)))
    assert source.report.unrewarded == 10 and source.report.malformed == 0
    assert rounds.event_ids == [b["event_id"] for b, _ in answers]
    assert rounds.propensities.tolist() == [b["probability"] for b, _ in answers]
    assert [rounds.actions[j][k]["id"] for j, k in enumerate(rounds.chosen)] == [b["chosen"] for b, _ in answers]
    assert rounds.rewards.tolist() == [v for _, v in answers]
    for j, (body, _) in enumerate(answers):
        by_id = {a["id"]: a["probability"] for a in body["ranking"]}
        assert rounds.logging_pmf[j].tolist() == [by_id[a["id"]] for a in rounds.actions[j]]


def test_redis_without_the_loop_or_unreachable(redis_server):
    with pytest.raises(LogError, match="--loop: required"):
        open_log(redis_server.url)
    with pytest.raises(LogError, match="no decision log for loop 'nope'"):
        open_log(redis_server.url, loop="nope")
    with pytest.raises(LogError, match="cannot read Redis"):
        open_log("redis://127.0.0.1:1/0", loop="recs")


def test_parquet_export_to_a_directory_is_partitioned_by_day_and_replaces_the_last(
        client, cfg, tmp_path, capsys):
    import datetime as dt

    from replay import candidate_from_mapping, evaluate

    _decide(client, 30, rewarded=25)
    out = tmp_path / "recs"
    args = ["export", "--config", cfg, "--loop", "recs", "--format", "parquet", "-o", str(out)]
    assert cbserve(args) == 0
    assert "exported 30 decisions (25 with rewards)" in capsys.readouterr().out
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    days = sorted(p.name for p in out.iterdir())
    assert days[-1] == f"day={today}" and len(days) <= 2  # a run across midnight has two
    table = pq.read_table(str(out))
    assert table.num_rows == 30
    feats = table.column("context_features").to_pylist()[0]
    assert {(f["namespace"], f["name"], f["value"], f["x"]) for f in feats} == {
        ("user", "country", "FR", 1.0), ("user", "age", None, 31.0), ("user", "tags", "a", 1.0),
        ("user", "tags", "b", 1.0), ("device", "os", "ios", 1.0)}
    json_out = tmp_path / "recs.json"
    assert cbserve(["export", "--config", cfg, "--loop", "recs", "-o", str(json_out)]) == 0
    cand = lambda: [candidate_from_mapping({"policy": {"type": "linucb", "alpha": 0.3}}, "c.toml")]  # noqa: E731
    a, b = evaluate(open_log(str(json_out)), cand()), evaluate(open_log(str(out)), cand())
    assert [r["value"] for r in a.rows] == pytest.approx([r["value"] for r in b.rows], abs=1e-12)
    _decide(client, 5, rewarded=0)
    assert cbserve(args) == 0  # again: the directory is replaced whole
    assert pq.read_table(str(out)).num_rows == 35
    assert sorted(p.name for p in tmp_path.iterdir() if ".part" in p.name) == []


def test_export_format_and_name_must_agree(client, cfg, tmp_path, capsys):
    args = ["export", "--config", cfg, "--loop", "recs", "--format", "dsjson", "-o", str(tmp_path / "x.parquet")]
    assert cbserve(args) == 2
    assert "-o/--output: a .parquet name with --format dsjson" in capsys.readouterr().err


def test_a_directory_export_never_replaces_what_is_not_an_export(client, cfg, tmp_path, capsys):
    _decide(client, 3, rewarded=3)
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    args = ["export", "--config", cfg, "--loop", "recs", "--format", "parquet", "-o"]
    assert cbserve(args + [str(mine)]) == 2
    assert "is not empty and not an earlier export (no _cbserve_export file" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
    (tmp_path / "afile").write_text("x")
    assert cbserve(args + [str(tmp_path / "afile")]) == 2
    assert "is a file; a partitioned Parquet export writes a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "c.toml", "mydata"]
    (tmp_path / "link").symlink_to(mine)
    assert cbserve(args + [str(tmp_path / "link")]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    json_args = ["export", "--config", cfg, "--loop", "recs", "-o", str(mine)]  # DSJSON onto a directory
    assert cbserve(json_args) == 2
    assert f"-o/--output: cannot write {mine}" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "c.toml", "link", "mydata"]
