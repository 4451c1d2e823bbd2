"""One evaluation spread over the files of a Parquet log (processes, or a local Ray):
the estimates of the single-process run, and clear refusals for what reads in order."""
import os

import pytest

import replay_eval
from replay import ParquetLog, candidate_from_mapping, evaluate, write_parquet
from replay.errors import ReplayError
from replay.logs import concat
from replay.ray_map import local_map, ray_map
from replay.readers import DSJSONLog
from replay.shards import evaluate_shards, process_map
from tests.ray_local import ray_local  # noqa: F401 - the session's Ray
from tests.replay.test_parquet_columns import trained, write_log

FIELDS = ("value", "low", "high", "ess", "n")


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    path = str(tmp / "log.json")
    write_log(path, 2_400, seed=2, days=4)
    rounds = concat(list(DSJSONLog(path).chunks()))
    write_parquet(rounds, str(tmp / "by-day"))
    (tmp / "lin.bin").write_bytes(trained({"type": "linucb", "alpha": 0.6}, rounds).to_bytes())
    return tmp


def cands(tmp, learn="frozen"):
    return [candidate_from_mapping({"snapshot": "lin.bin", "name": "lin", "learn": learn},
                                   str(tmp / "c.toml")),
            candidate_from_mapping({"policy": {"type": "epsilon_greedy", "epsilon": 0.3},
                                    "name": "eg"}, str(tmp / "c.toml"))]


def values(result):
    return [(r["policy"], r["estimator"]) + tuple(r[f] for f in FIELDS) for r in result.rows]


def test_four_days_spread_give_the_single_process_estimates(log):
    path = str(log / "by-day")
    assert len(ParquetLog(path).files()) == 4
    whole = evaluate(ParquetLog(path), cands(log))
    local = evaluate_shards(path, cands(log), local_map)
    for a, b in zip(values(whole), values(local)):
        assert a[:2] == b[:2] and a[-1] == b[-1]
        assert a[2:-1] == pytest.approx(b[2:-1], rel=1e-12, abs=1e-12)
    assert whole.overlap == local.overlap and whole.rounds == local.rounds == 2_400
    assert local.report.rounds == 2_400 and local.report.records == 2_400
    spread = evaluate_shards(path, cands(log), process_map(2))
    assert values(spread) == values(local)  # the same sums in the same order: equal


def test_on_ray_the_results_are_identical(log, ray_local):  # noqa: F811
    path = str(log / "by-day")
    assert values(evaluate_shards(path, cands(log), ray_map)) == \
        values(evaluate_shards(path, cands(log), local_map))


def test_learning_candidates_are_refused(log):
    with pytest.raises(ReplayError, match='lin: learn = "replay" reads the log in order'):
        evaluate_shards(str(log / "by-day"), cands(log, "replay"), local_map)


def test_replay_eval_workers_prints_the_table(log, tmp_path, capsys):
    policy = tmp_path / "lin.toml"
    policy.write_text(f'name = "lin"\nsnapshot = "{log / "lin.bin"}"\n')
    out = [
        "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")]
    assert replay_eval.main(["--log", str(log / "by-day"), "--policy", str(policy), "--workers", "2"] + out) == 0
    text = capsys.readouterr().out
    assert "2400 records, 2400 rewarded rounds" in text and "lin " in text
    assert os.path.exists(tmp_path / "r.png")


@pytest.mark.parametrize("extra,match", [
    (["--workers", "2", "--limit", "10"], "--workers: --limit reads the log in order"),
    (["--ray", "--train-fraction", "0.5"], "--ray: --train-fraction reads the log in order"),
    (["--workers", "2", "--ci", "bootstrap"], "--workers: --ci bootstrap resamples"),
    (["--workers", "0"], "--workers: must be at least 1"),
])
def test_replay_eval_refuses_what_cannot_be_spread(log, tmp_path, capsys, extra, match):
    policy = tmp_path / "p.toml"
    policy.write_text('policy = { type = "linucb" }\n')
    with pytest.raises(SystemExit) as exc:
        replay_eval.main(["--log", str(log / "by-day"), "--policy", str(policy)] + extra)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


def test_replay_eval_spreads_only_parquet(log, tmp_path, capsys):
    policy = tmp_path / "p.toml"
    policy.write_text('policy = { type = "linucb" }\n')
    with pytest.raises(SystemExit):
        replay_eval.main(["--log", str(log / "log.json"), "--policy", str(policy), "--workers", "2"])
    assert "--workers: spreads a Parquet log" in capsys.readouterr().err
