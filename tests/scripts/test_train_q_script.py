"""scripts/train_q_policy.py: the worked path end to end at a small size (the full-size
ratio is a benchmark figure, not a test), and training on a given export."""
import json
import os
import subprocess
import sys

import pytest

from bandits import load_policy, make_policy
from service.config import load_config

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "train_q_policy.py")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=300)


def test_worked_path_logs_exports_trains_and_serves(tmp_path):
    out = tmp_path / "q"
    proc = run("--out", str(out), "--collect", "80", "--learn", "10", "--eval", "30")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"q_policy_return", "best_bandit_return", "ratio"} <= set(result)
    assert result["ratio"] == pytest.approx(result["q_policy_return"] / result["best_bandit_return"])
    assert set(result["returns"]) == {"shop (ε=0.5, logger)", "shop-linucb", "shop-greedy",
                                      "shop-uniform", "qnetwork"}
    assert result["ope"]["pdis"]["n"] == 80 and result["transitions"] > 80
    # the switch is configuration only: the written config serves the ONNX model
    loop = load_config(result["config"]).loops["shop"]
    assert loop.policy["type"] == "qnetwork" and loop.policy["action_ids"] == [
        "bait-1", "bait-2", "deep-1", "deep-2"]
    rows = [json.loads(line) for line in open(out / "shop.transitions.jsonl")]
    assert len(rows) == result["transitions"] and sum(t["done"] for t in rows) == 80
    assert "Q-network / best bandit" in proc.stdout

    # train on an existing export: model + off-policy estimate, no serving
    proc = run("--transitions", str(out / "shop.transitions.jsonl"), "--out", str(tmp_path / "t"),
               "--actions", "bait-1,bait-2,deep-1,deep-2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads(proc.stdout.strip().splitlines()[-1])
    policy = make_policy({"type": "qnetwork", "model": again["model"],
                          "action_ids": ["bait-1", "bait-2", "deep-1", "deep-2"],
                          "state": {"features": ["user.engagement", "user.affinity"],
                                    "history": 2, "step": True}})
    assert load_policy(policy.to_bytes()).action_ids == policy.action_ids
    assert set(again["ope"]) == {"logged", "pdis", "wpdis"}

    proc = run("--transitions", str(out / "shop.transitions.jsonl"))
    assert proc.returncode == 2 and "--actions: required" in proc.stderr
