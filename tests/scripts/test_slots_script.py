"""scripts/slots.py: its configuration is one the service accepts, and a tiny run through
the real service and learner prints every figure on its last line."""
import json
import os
import subprocess
import sys
import tomllib

from service.config import parse_config

import slots

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "slots.py")
FIGURES = {
    "click_ratio": float, "clicks_slots": float, "clicks_single": float,
    "clicks_by_place_slots": list, "clicks_by_place_single": list,
    "clicks_by_block_slots": list, "clicks_by_block_single": list,
    "expected_click_ratio": float, "expected_clicks_slots": float,
    "expected_clicks_single": float, "expected_clicks_best": float,
    "model_version_slots": int, "model_version_single": int, "request_errors": int,
    "slate_ci_coverage": dict,
    "latency_p50_ms_slots": float, "latency_p99_ms_slots": float,
    "latency_p50_ms_single": float, "latency_p99_ms_single": float,
    "latency_ratio_p50": float, "latency_ratio_p99": float,
    "throughput_rps_slots": float, "throughput_rps_single": float, "throughput_ratio": float,
    "throughput_generator": str, "rounds": int, "slots": int, "candidates": int, "block": int,
    "seed": int, "slot_features": str, "workers": int, "seconds": float}


def test_the_carousel_has_one_slot_per_place_and_the_single_loop_the_same_policy():
    cfg = parse_config(tomllib.loads(slots.config(3, 7, 0.5)))
    carousel, single = cfg.loops["carousel"], cfg.loops["single"]
    assert [s.id for s in carousel.slots] == ["s1", "s2", "s3"]
    assert carousel.slots[1].features == {}
    onehot = parse_config(tomllib.loads(slots.config(3, 7, 0.5, "onehot"))).loops["carousel"]
    assert onehot.slots[1].features == {"pos": {"p2": 1}}
    depth = parse_config(tomllib.loads(slots.config(3, 7, 0.5, "depth"))).loops["carousel"]
    assert [s.features for s in depth.slots] == [{"pos": {"depth": float(j)}} for j in range(3)]
    assert single.slots == () and carousel.policy == single.policy
    assert carousel.featurizer == single.featurizer and carousel.seed == single.seed == 7


def test_a_tiny_run_prints_every_figure_on_its_last_line():
    proc = subprocess.run([sys.executable, SCRIPT, "--rounds", "40", "--block", "20",
                           "--slots", "3", "--candidates", "10", "--latency-n", "20",
                           "--tp-rounds", "1", "--tp-seconds", "1", "--ci-logs", "3",
                           "--ci-rounds", "300"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures) == set(FIGURES)
    for key, kind in FIGURES.items():
        value = figures[key]
        assert isinstance(value, (int, float) if kind is float else kind), (key, value)
    assert (figures["rounds"], figures["slots"], figures["candidates"]) == (40, 3, 10)
    assert len(figures["clicks_by_place_slots"]) == len(figures["clicks_by_place_single"]) == 3
    assert figures["clicks_slots"] == sum(figures["clicks_by_place_slots"])
    assert len(figures["clicks_by_block_single"]) == 2  # 40 rounds in blocks of 20
    assert figures["clicks_single"] == sum(figures["clicks_by_block_single"])
    assert figures["request_errors"] == 0
    assert figures["model_version_slots"] >= 1 and figures["model_version_single"] >= 1
    assert figures["expected_clicks_best"] >= max(figures["expected_clicks_slots"],
                                                  figures["expected_clicks_single"])
    assert figures["slate_ci_coverage"] and all(
        0 <= v <= 1 for v in figures["slate_ci_coverage"].values())
    for key in ("latency_p50_ms_slots", "latency_p99_ms_single", "throughput_rps_slots"):
        assert figures[key] > 0
