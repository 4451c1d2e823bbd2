"""The Prometheus rules and the Grafana dashboard of deploy/: promtool accepts the rules
and their unit tests pass, and every metric either one reads is one the service's
/metrics exports (scraped from the real app after traffic and a learner step)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from service.learner import LoopLearner

from tests.conftest import RECS_ITEMS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULES_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
GRAFANA = DEPLOY / "grafana" / "cbserve.json"
#: Series Prometheus itself makes: not the service's to export.
PROMETHEUS_OWN = {"up"}
#: The sample names of each metric type, from its family name.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",), "summary": ("_sum", "_count", "")}
#: PromQL keywords, aggregations (``sum by (loop) (...)``) and the labels grouped by.
PROMQL = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
          "offset", "bool", "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar",
          "topk", "bottomk", "quantile", "count_values", "le", "loop"}

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(promtool is None, reason="promtool is not installed "
                                    "(Debian: apt-get install prometheus; .ci/run does it)")


def rule_exprs() -> list:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def grafana_exprs() -> list:
    panels = json.loads(GRAFANA.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def metric_names(expr: str) -> set:
    """The metric names a PromQL expression reads (label matchers, ranges, strings and
    function names removed).

    >>> sorted(metric_names('histogram_quantile(0.99, sum by (le, loop) (rate(x_bucket{loop=~"$loop"}[5m])))'))
    ['x_bucket']
    >>> sorted(metric_names('a > 7200 and b{kind="reward"} == 1'))
    ['a', 'b']
    """
    bare = re.sub(r'"[^"]*"', "", re.sub(r"\{[^}]*\}", "", expr))
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"[a-zA-Z_]+\s*\(", "(", bare)  # functions and aggregations
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return {w for w in words if w not in PROMQL and not re.fullmatch(r"\d+[smhd]?", w)}


def exported(text: str) -> set:
    """Every sample name ``/metrics`` can show: those present, and those of each family
    declared (a family without samples, e.g. no challenger configured, still counts)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples}
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


@needs_promtool
def test_promtool_accepts_the_rules():
    run = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_the_rules_unit_tests_pass():
    run = subprocess.run([promtool, "test", "rules", str(RULES_TEST)], capture_output=True,
                         text=True, cwd=RULES_TEST.parent)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_rule_waits_and_says_what_to_do():
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule.get("for"), rule["alert"]
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_every_grafana_query_follows_the_loop_variable():
    dash = json.loads(GRAFANA.read_text())
    assert "loop" in {v["name"] for v in dash["templating"]["list"]}
    for expr in grafana_exprs():
        assert expr.count("cbserve_") == expr.count('loop=~"$loop"'), expr


def test_every_metric_the_rules_and_grafana_read_is_exported(app, config, r):
    client = app.test_client()
    for i in range(40):
        res = client.post("/v1/loops/recs/rank", json={"context": {"user": {"age": i % 5}},
                                                       "actions": RECS_ITEMS[:5]}).get_json()
        client.post(f"/v1/loops/recs/events/{res['event_id']}/reward", json={"value": float(i % 2)})
    learner = LoopLearner(r, config.loops["recs"], config)
    while learner.step():
        pass
    learner.publish()
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    have = exported(scrape.get_data(as_text=True))
    for source, exprs in (("alerts.yml", rule_exprs()), ("cbserve.json", grafana_exprs())):
        used = set().union(*map(metric_names, exprs)) - PROMETHEUS_OWN
        assert used, source
        assert used <= have, f"{source} reads metrics /metrics does not export: {sorted(used - have)}"
