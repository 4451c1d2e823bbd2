"""cbserve evaluate-features (service.features_cli): the table, the chart and one JSON
line last on a small log; the overlap warning on stderr; bad input is one line naming
the option, exit 2."""
import json
import sys

import pytest

from replay.simulated import write_dsjson
from service.cli import main
from tests.replay.test_features import feature_log

CONFIG = """
[loops.feat]
policy = {type = "epsilon_greedy", epsilon = 0.1}
featurizer = {context_dim = 16, action_dim = 8, interaction_dim = 32}

[loops.fixed]
actions = ["item-0", "item-1"]
policy = {type = "epsilon_greedy", epsilon = 0.1}
"""


@pytest.fixture
def files(tmp_path):
    cfg, log, small = tmp_path / "cbserve.toml", tmp_path / "log.json.gz", tmp_path / "small.json"
    cfg.write_text(CONFIG)
    write_dsjson(feature_log(1000, seed=3), str(log))
    write_dsjson(feature_log(200, seed=3), str(small))
    return str(cfg), str(log), str(small)


def run(cfg, *argv):
    return main(["evaluate-features", "--config", cfg, *argv])


def test_the_table_and_the_json_line(files, tmp_path, capsys):
    cfg, log, _ = files
    png = tmp_path / "features.png"
    assert run(cfg, "--loop", "feat", "--log", log, "--png", str(png)) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].startswith("trained on 700 rounds, evaluated on 300 held-out rounds")
    assert lines[1].split()[:4] == ["namespace", "DR", "SNIPS", "ESS"]
    assert lines[3].startswith("baseline ")
    assert {line.split()[0] for line in lines[4:-1]} == {
        "context:user", "context:device", "context:noise", "action:item"}
    figures = json.loads(lines[-1])
    assert figures["loop"] == "feat" and figures["trusted"] is True and figures["png"] == str(png)
    assert [r["rank"] for r in figures["rows"]] == [1, 2, 3, 4]
    assert figures["baseline"]["dr"]["estimator"] == "dr" and figures["holdout_rounds"] == 300
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "5/5" in err and "overlap too small" not in err


def test_too_little_overlap_is_a_warning_on_stderr_and_in_the_json(files, capsys):
    cfg, _, small = files
    assert run(cfg, "--loop", "feat", "--log", small, "--holdout", "0.1") == 0
    out, err = capsys.readouterr()
    assert "cbserve: warning: overlap too small: the ESS of the held-out importance weights" in err
    assert "NOT TRUSTED" in out
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["trusted"] is False and figures["warning"].startswith("overlap too small")
    assert all(r["low"] is None and r["rank"] is None for r in figures["rows"])


def test_a_fixed_action_loop_leaves_out_events_over_other_ids(files, capsys):
    cfg, _, small = files
    assert run(cfg, "--loop", "fixed", "--log", small) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cbserve: --log: ") and "0 usable rewarded events" in err


@pytest.mark.parametrize("argv, message", [
    (["--loop", "nope"], "cbserve: --loop: unknown loop 'nope' (configured: feat, fixed)"),
    (["--loop", "feat", "--log", "missing.json"], "cbserve: --log: no such file 'missing.json'"),
    (["--loop", "feat", "--holdout", "0"], "cbserve: --holdout: must be in (0, 1), got 0.0"),
    (["--loop", "feat", "--holdout", "1"], "cbserve: --holdout: must be in (0, 1), got 1.0"),
    (["--loop", "feat", "--holdout", "-0.5"], "cbserve: --holdout: must be in (0, 1), got -0.5"),
    (["--loop", "feat", "--holdout", "0.999"], "cbserve: --holdout: 0.999 of 200 rounds leaves 0 "),
])
def test_bad_input_is_one_line_naming_the_option(files, capsys, argv, message):
    cfg, _, small = files
    if "--log" not in argv:
        argv = [*argv, "--log", small]
    assert run(cfg, *argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith(message) and err.count("\n") == 1 and out == ""


def test_without_tqdm_and_matplotlib_a_plain_progress_line_and_no_chart(files, tmp_path,
                                                                         capsys, monkeypatch):
    cfg, _, small = files
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png = tmp_path / "features.png"
    assert run(cfg, "--loop", "feat", "--log", small, "--png", str(png)) == 0
    out, err = capsys.readouterr()
    assert "\rtrained 5/5 (action:item)" in err and "--png: matplotlib is not installed" in err
    assert not png.exists() and json.loads(out.strip().splitlines()[-1])["png"] is None
