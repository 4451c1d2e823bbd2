"""Simulated users over real HTTP against a real service: the log holds every decision
with the propensity the client got; the script and ``cbserve demo`` end to end."""
import csv
import os
import subprocess
import sys

import pytest

from bandits.environments import CatalogueEnv, TreatmentEnv
from service.embedded import RunningService
from service.traffic import HttpError, JsonClient, check_log, drive

HERE = os.path.dirname(__file__)
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "simulate.py")
HERO = ["hero-a", "hero-b", "hero-c", "hero-d"]


@pytest.fixture
def service(config, r):
    with RunningService(config, r) as svc:
        JsonClient(svc.url).wait_healthy()
        yield svc


def test_simulated_traffic_is_logged_with_the_propensities_the_client_got(service, r):
    client = JsonClient(service.url)
    hero = drive(client, "hero", TreatmentEnv(actions=HERO, seed=1), 300, delay=7, missing=0.2)
    recs = drive(client, "recs", CatalogueEnv(n_items=40, seed=2), 200)
    for loop, traj in (("hero", hero), ("recs", recs)):
        check = check_log(r, loop, traj)
        assert (check.checked, check.missing, check.mismatched) == (len(traj), 0, 0), check
        assert check.ok
    sent = sum(1 for v in hero.reward if v == v)  # NaN marks a reward never sent
    assert 0.7 * 300 < sent < 0.9 * 300  # the missing share, binomial bounds
    counters = client.call("GET", "/v1/loops/hero")["counters"]
    assert counters["decisions"] == 300 and counters["rewards"] == sent
    assert len(set(recs.chosen)) > 10  # per-request candidates from a 40-item catalogue


def test_the_log_check_catches_a_different_propensity_and_a_missing_event(service, r):
    traj = drive(JsonClient(service.url), "hero", TreatmentEnv(actions=HERO, seed=3), 20)
    traj.probability[4] = traj.probability[4] / 2
    traj.event_ids[7] = "never-logged"
    check = check_log(r, "hero", traj)
    assert (check.checked, check.missing, check.mismatched) == (20, 1, 1) and not check.ok


def test_an_environment_that_does_not_fit_the_loop_is_refused(service):
    client = JsonClient(service.url)
    with pytest.raises(ValueError, match="loop 'hero' has actions"):
        drive(client, "hero", TreatmentEnv(actions=["a", "b", "c", "d"]), 5)
    with pytest.raises(HttpError, match="404"):
        drive(client, "nope", TreatmentEnv(), 5)


def test_simulate_script_over_http_checks_the_log_and_writes_csv_and_png(service, redis_server, tmp_path):
    out = tmp_path / "sim"
    proc = subprocess.run([sys.executable, SCRIPT, "--url", service.url, "--loop", "hero",
                           "--rounds", "150", "--delay", "3", "--missing", "0.1",
                           "--redis-url", redis_server.url, "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "log check: 150/150 decisions in the log" in proc.stdout
    rows = list(csv.DictReader(open(out / "hero-epsilon_greedy.csv")))
    assert len(rows) == 150 and rows[0]["chosen"] in HERO
    assert float(rows[-1]["cum_regret"]) == pytest.approx(
        sum(float(x["optimal"]) - float(x["expected"]) for x in rows))
    assert (out / "simulate.png").stat().st_size > 10_000
    assert "hero (epsilon_greedy)" in proc.stdout.splitlines()[-2]


def test_simulate_script_in_process_from_a_loop_config(tmp_path):
    config = os.path.join(HERE, "..", "..", "config", "example.toml")
    proc = subprocess.run([sys.executable, SCRIPT, "--config", config, "--rounds", "200",
                           "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in tmp_path.iterdir()} == {
        "homepage-hero-epsilon_greedy.csv", "recs-linucb.csv", "simulate.png"}
    bad = subprocess.run([sys.executable, SCRIPT, "--env", "catalogue", "--env-arg", "n_itemz=3"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "env.n_itemz: unknown parameter" in bad.stderr


def test_cbserve_demo_runs_the_example_loops_over_http(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "service.cli", "demo", "--rounds", "400",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for loop in ("homepage-hero (epsilon_greedy)", "recs (linucb)"):
        assert f"{loop}: 400 rounds" in proc.stdout
    assert proc.stdout.count("400/400 decisions in the log with the same action and propensity") == 2
    assert proc.stdout.count("learned vs uniform") == 2
    assert (tmp_path / "demo.png").exists() and not (tmp_path / ".cbserve").exists()


def test_demo_refuses_a_loop_it_cannot_simulate(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[loops.tiny]\nactions = ["x", "y"]\npolicy = { type = "epsilon_greedy" }\n')
    proc = subprocess.run([sys.executable, "-m", "service.cli", "demo", "--config", str(cfg),
                           "--rounds", "10", "--out", ""], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "loops.tiny: the simulator knows 4-8 UI treatments" in proc.stderr
