"""scripts/simulate.py's grid (policies × environments × seeds): the same figures in
this process and on a real local Ray (2 CPUs, one per test session), one table, a CSV
row per run, the figures as the last line; and the grid's arguments checked."""
import csv
import json
import os
import subprocess
import sys

import pytest

import simulate
from replay.ray_map import local_map, ray_map
from service.sim.grid import grid_cells, grid_table, parse_seeds, run_cell, summarize
from service.testing.redis_server import free_port
from tests.ray_local import ray_local, ray_stops_after_its_last_test  # noqa: F401

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "simulate.py")

POLICIES = [("eg", {"type": "epsilon_greedy", "epsilon": 0.1}, None),
            ("lints", {"type": "lints"}, None),  # seeded by the cell's seed
            ("vw", {"type": "vw"}, None)]
ENVS = [{"type": "linear", "n_actions": 4}, {"type": "treatments", "change_at": 100}]


def test_a_grid_gives_identical_figures_in_process_and_on_ray(ray_local):
    cells = grid_cells(POLICIES, ENVS, seeds=[0, 1], rounds=150, delay=3, missing=0.1)
    assert len(cells) == 12
    assert [(c.policy, c.env["type"], c.seed) for c in cells[:3]] == [
        ("eg", "linear", 0), ("eg", "linear", 1), ("eg", "treatments", 0)]
    here = local_map(run_cell, cells)
    assert ray_map(run_cell, cells) == here  # exact, figure by figure
    assert here[0]["regret"] != here[1]["regret"]  # the seed changes the run
    assert here[2]["environment"] == "treatments: 4 treatments, CTR around 0.05, reversed at round 100"


def test_the_seeds_of_a_pair_fold_into_mean_and_sample_sd():
    runs = [{"policy": "p", "environment": "e", "rounds": 10, "seed": s, "expected": v,
             "final_expected": v, "final_uniform": 0.1, "final_best_fixed": 0.2,
             "final_optimal": 1.0, "regret": 10 * v} for s, v in ((0, 0.2), (1, 0.4), (2, 0.6))]
    runs.append({**runs[0], "policy": "q", "seed": 5})
    rows = summarize(runs)
    assert [(r["policy"], r["seeds"]) for r in rows] == [("p", 3), ("q", 1)]
    assert rows[0]["final_expected"] == pytest.approx(0.4)
    assert rows[0]["final_expected_sd"] == pytest.approx(0.2)  # ddof = 1
    assert rows[0]["regret"] == pytest.approx(4.0) and rows[0]["regret_sd"] == pytest.approx(2.0)
    assert rows[1]["final_expected_sd"] == 0.0
    lines = grid_table(rows).splitlines()
    assert lines[1].split() == ["p", "e", "3", "10", "0.4000", "±", "0.2000", "1.0000",
                                "4.0", "±", "2.0"]
    assert len({len(line) for line in lines}) == 1  # the columns stay aligned


def _grid(capsys, tmp_path, *extra):
    argv = ["--env", "linear", "--env", "logistic", "--seeds", "2", "--rounds", "120",
            "--policy", '{"type": "epsilon_greedy"}', "--policy", '{"type": "lints"}',
            "--no-progress", "--out", str(tmp_path), *extra]
    assert simulate.main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return out, json.loads(out[-1]), (tmp_path / "grid.csv").read_text()


def test_simulate_grid_prints_one_table_and_the_same_figures_with_and_without_ray(
        ray_local, capsys, tmp_path):
    out, here, rows_here = _grid(capsys, tmp_path / "here")
    _, on_ray, rows_ray = _grid(capsys, tmp_path / "ray", "--ray")
    assert (here["ray"], on_ray["ray"]) == (None, "local")
    assert here["runs"] == on_ray["runs"] == 8 and here["seeds"] == [0, 1]
    assert on_ray["rows"] == here["rows"] and rows_ray == rows_here
    assert out[0].split()[:5] == ["policy", "environment", "seeds", "rounds", "final"]
    eg, lints = '{"type":"epsilon_greedy"}', '{"type":"lints"}'
    assert [line.split()[0] for line in out[1:5]] == [eg, eg, lints, lints]
    assert [(r["policy"], r["environment"], r["seeds"]) for r in here["rows"]][:2] == [
        ('{"type":"epsilon_greedy"}', "linear: 5 actions, 6 features", 2),
        ('{"type":"epsilon_greedy"}', "logistic: 5 actions, 6 features", 2)]
    cells = list(csv.DictReader(rows_here.splitlines()))
    assert len(cells) == 8 and [c["seed"] for c in cells[:2]] == ["0", "1"]


def test_grid_seeds_as_a_count_from_seed_or_as_a_list():
    assert parse_seeds("3", first=5) == [5, 6, 7]
    assert parse_seeds("3,7,11") == [3, 7, 11]
    for bad in ("x", "0", "1,1", "2,a"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_grid_arguments_are_checked(capsys, tmp_path):
    assert simulate.main(["--seeds", "two", "--out", str(tmp_path)]) == 2
    assert "simulate: --seeds: expected a count" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        simulate.main(["--url", "http://127.0.0.1:1", "--loop", "hero", "--ray"])
    assert exit_.value.code == 2
    assert "--ray, --seeds and several --env run in process" in capsys.readouterr().err
    assert simulate.main(["--env", "linear", "--env", "catalogue", "--env-arg", "n_itemz=3",
                          "--no-progress", "--out", str(tmp_path)]) == 2
    assert "env.n_itemz: unknown parameter" in capsys.readouterr().err


def test_a_ray_address_where_nothing_listens_fails_at_once(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (or '.[dev]')")
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.run([sys.executable, SCRIPT, "--ray", address, "--rounds", "10",
                           "--no-progress", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"simulate: no Ray cluster answers at {address}")
    assert not (tmp_path / "grid.csv").exists()
