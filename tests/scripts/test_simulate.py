"""Simulated users over real HTTP against a real service: the log holds every decision
with the propensity the client got; the script and ``cbserve demo`` end to end."""
import csv
import json
import os
import signal
import subprocess
import sys

import pytest

from bandits.environments import CatalogueEnv, TreatmentEnv
from service.embedded import RunningService
from service.sim.report import table
from service.sim.traffic import HttpError, JsonClient, check_log, drive
from service.testing.redis_server import free_port

HERE = os.path.dirname(__file__)
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "simulate.py")
REPLAY_EVAL = os.path.join(HERE, "..", "..", "scripts", "replay_eval.py")
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


def test_simulate_refuses_an_unreachable_redis_before_the_first_round(service, tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for option, env in ((["--redis-url", dead], {}), ([], {"REDIS_URL": dead})):
        proc = subprocess.run([sys.executable, SCRIPT, "--url", service.url, "--loop", "hero",
                               "--rounds", "30", "--out", str(tmp_path / "sim"), "--no-progress",
                               *option], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        name = "--redis-url" if option else "$REDIS_URL"
        assert proc.stderr.startswith(f"simulate: {name}: cannot reach the service's Redis at {dead}")
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert JsonClient(service.url).call("GET", "/v1/loops/hero")["counters"]["decisions"] == 0
    assert not (tmp_path / "sim").exists()


def test_simulate_finds_the_redis_of_a_running_cbserve_serve_by_its_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""[service]
data_dir = "{tmp_path / 'data'}"
[loops.hero]
actions = {json.dumps(HERO)}
policy = {{ type = "epsilon_greedy", epsilon = 0.1, model = "disjoint" }}
""")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    run = [sys.executable, SCRIPT, "--config", str(cfg), "--loop", "hero", "--rounds", "40",
           "--out", str(tmp_path / "sim"), "--no-progress"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stopped = subprocess.run(run + ["--url", url], env=env, capture_output=True, text=True,
                             timeout=120)
    assert stopped.returncode == 2 and "--config: no cbserve serve is running on" in stopped.stderr
    with open(tmp_path / "serve.log", "ab") as log:
        serve = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--config", str(cfg),
                                  "--port", str(port)], env=env, stdout=log, stderr=log)
        try:
            JsonClient(url).wait_healthy(30)
            proc = subprocess.run(run + ["--url", url], env=env, capture_output=True, text=True,
                                  timeout=120)
            live = _replay_eval(cfg, tmp_path, env)  # the running service's Redis
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "log check: 40/40 decisions in the log" in proc.stdout
    stored = _replay_eval(cfg, tmp_path, env)  # the data_dir's Redis, started for the run
    for out in (live, stored):
        assert out.returncode == 0, out.stderr
        assert "40 records, 40 rewarded rounds" in out.stdout


def _replay_eval(cfg, tmp_path, env):
    return subprocess.run([sys.executable, REPLAY_EVAL, "--config", str(cfg), "--loop", "hero",
                           "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")],
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_final_table_never_cuts_a_policy_label():
    row = {"rounds": 10, "expected": 0.1, "final_expected": 0.2, "final_uniform": 0.1,
           "final_best_fixed": 0.15, "final_optimal": 0.3, "regret": 2.0}
    long = '{"type":"linucb","model":"disjoint","alpha":0.2,"epsilon":0.05}'
    lines = table([{**row, "policy": long}, {**row, "policy": "vw"}]).splitlines()
    assert lines[1].startswith(long + " ") and lines[2].startswith("vw ")
    assert len({len(line) for line in lines}) == 1  # the columns stay aligned
    assert lines[1].split()[1:] == ["10", "0.1000", "0.2000", "0.1000", "0.1500", "0.3000", "2.0"]
