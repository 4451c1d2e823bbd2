"""scripts/replay_eval.py end to end: table, JSON and PNG; clear errors, exit status 2."""
import json
import os

import pytest

from replay.simulated import write_dsjson

import replay_eval

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "candidates")


def test_replay_eval_writes_table_json_and_png(tmp_path, events, capsys):
    log = str(tmp_path / "log.json.gz")
    write_dsjson(events, log)
    out_json, out_png = str(tmp_path / "r.json"), str(tmp_path / "r.png")
    code = replay_eval.main(["--log", log, "--policy", os.path.join(EXAMPLES, "linucb.toml"),
                             "--policy", os.path.join(EXAMPLES, "online-linucb.toml"),
                             "--train-fraction", "0.5", "--json", out_json, "--plot", out_png])
    assert code == 0
    text = capsys.readouterr().out
    assert "600 records, 600 rewarded rounds, 0 unrewarded, 0 skipped (_skipLearn), 0 unsupported, 0 malformed" in text
    assert "linucb-alpha-0.3        dr" in text and "linucb-online           replay" in text
    result = json.load(open(out_json))
    assert {(r["policy"], r["estimator"]) for r in result["rows"]} >= {("logging", "ips"), ("linucb-alpha-0.3", "sndr"), ("linucb-online", "replay")}
    assert result["rounds"] == 300 and result["train_rounds"] == 300
    with open(out_png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_config_without_a_loop_is_refused_before_reaching_redis(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        replay_eval.main(["--config", str(tmp_path / "absent.toml")])
    assert exc.value.code == 2
    assert "--loop: required with --config" in capsys.readouterr().err


@pytest.mark.parametrize("args,match", [
    (["--log", "/nonexistent/log.json"], "--log: no such file"),
    (["--policy", "/nonexistent/p.toml"], "--policy /nonexistent/p.toml: cannot read"),
    (["--estimators", "ips,magic"], "--estimators: unknown magic"),
    (["--level", "2"], "--level: must be in"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, events, capsys, args, match):
    log = str(tmp_path / "log.json")
    write_dsjson(events[:20], log)
    with pytest.raises(SystemExit) as exc:
        replay_eval.main(["--log", log, "--json", str(tmp_path / "r.json"),
                          "--plot", str(tmp_path / "r.png")] + args)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err
