"""VW learns from what ``cbserve export`` writes: real traffic over the API (plain
values, bags, unicode, metadata keys VW reserves, fixed and per-request actions,
deferred, defaulted and unrewarded events), checked line by line with VW's parser and
as a whole with VW's own command-line driver."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import vowpalwabbit

from bandits import Featurizer, dsjson
from service.app import create_app
from service.cli import main as cbserve
from service.config import load_config
from service.store import LoopStore

#: Metadata keys VW gives a meaning to, sent inside contexts and action features.
RESERVED = {"_tag": "t", "_slot_id": 3, "_label_cost": 9, "_labelIndex": 0, "_multi": [{}],
            "_a": [1], "_labelled": True, "_text": "x y", "_p": [1.0]}
CONSTANT_NS = 128  # VW's constant feature, added to every example

TOML = """
[service]
publish_events = 20
publish_seconds = 0.3
[loops.hero]
actions = ["hero-a", "hero-b", "hero-c", "hero-d"]
reward_wait = "1s"
default_reward = 0.0
[loops.hero.policy]
type = "epsilon_greedy"
epsilon = 0.2
model = "disjoint"
[loops.hero.featurizer]
context_dim = 8
interaction_dim = 0
action_id = false
[loops.recs]
reward_wait = "30s"
[loops.recs.policy]
type = "linucb"
alpha = 0.5
epsilon = 0.05
"""


def _context(rng, i):
    bag = rng.choice(["runner", "köln", "книги", "run ner", "a:b|c"], size=rng.integers(0, 4)).tolist()
    ctx = {"user": {"country": str(rng.choice(["FR", "DE", "日本"])), "age": int(rng.integers(18, 80)),
                    "premium": bool(i % 2), "zero": 0, "none": None, "tags": bag + bag[:1],
                    "_debug": "x"},
           "device": {"os": "ios", "ratio": 1.5},
           "plain": float(i % 3), "hobbies": ["chess"], **RESERVED}
    if i % 4 == 0:
        ctx["user"]["_label_cost"] = 3  # a reserved name inside a namespace too
    return ctx


def _actions(rng):
    return [{"id": f"item-{j}",
             "features": {"item": {"price": float(j % 5), "genres": ["drama", "comédie"][: 1 + j % 2],
                                   "title": f"Amélie ☕ {j}", "_sku": j},
                          "_tag": "x", "a_id": {"own": 1.0}}}
            for j in rng.choice(12, 5, replace=False).tolist()]


def _traffic(client, loop, rounds, rng):
    """Rank ``rounds`` times; reward ~70 % (deferred ones after activation, some never
    activated); returns ``{event id: (context, actions sent, reward or None)}``."""
    sent = {}
    for i in range(rounds):
        ctx = _context(rng, i)
        body = {"context": ctx, "defer": i % 10 == 0}
        actions = None if loop == "hero" else _actions(rng)
        if actions is not None:
            body["actions"] = actions
        out = client.post(f"/v1/loops/{loop}/rank", json=body)
        assert out.status_code == 200, out.get_json()
        event_id = out.get_json()["event_id"]
        reward = None
        if body["defer"] and i % 20 == 0:
            client.post(f"/v1/loops/{loop}/events/{event_id}/activate")
        if (not body["defer"] or i % 20 == 0) and rng.random() < 0.7:
            reward = float(rng.choice([0.0, 1.0, 0.25]))
            assert client.post(f"/v1/loops/{loop}/events/{event_id}/reward",
                               json={"value": reward}).status_code == 200
        sent[event_id] = (ctx, actions, reward)
    return sent


def _vw_count(obj):
    """Features VW makes of a context or action object: numbers other than 0 (true is
    1), strings, one per distinct bag item; ``_`` keys and nulls none."""
    n = 0
    for key, value in obj.items():
        if key.startswith("_") or value is None or value is False:
            continue
        if isinstance(value, dict):
            n += _vw_count(value)
        elif isinstance(value, list):
            n += len(set(value))
        elif isinstance(value, str) or value != 0:
            n += 1
    return n


def _features(example):
    return sum(example.num_features_in(j) for j in range(example.num_namespaces())
               if example.namespace(j) != CONSTANT_NS)


@pytest.fixture
def export(tmp_path, r, redis_server, monkeypatch):
    """Mixed traffic on both example-style loops, exported as each loop's DSJSON."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(TOML)
    config = load_config(str(cfg))
    client, rng = create_app(config, r).test_client(), np.random.default_rng(7)
    sent = {loop: _traffic(client, loop, 120, rng) for loop in ("hero", "recs")}
    time.sleep(1.1)
    assert LoopStore(r, config.loops["hero"]).sweep()[0] > 0  # default rewards
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    files = {}
    for loop in sent:
        files[loop] = tmp_path / f"{loop}.json"
        assert cbserve(["export", "--config", str(cfg), "--loop", loop, "-o", str(files[loop])]) == 0
    return sent, files


def test_vw_parses_every_line_with_its_label_on_the_chosen_action(export):
    sent, files = export
    vw = vowpalwabbit.Workspace("--cb_explore_adf --dsjson --quiet")
    for loop, path in files.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(sent[loop])
        for line in lines:
            event = json.loads(line)
            ctx, actions, reward = sent[loop][event["EventId"]]
            examples = vw.parse(line, vowpalwabbit.LabelType.CONTEXTUAL_BANDIT)
            k = len(event["ActionIds"])
            assert len(examples) == 1 + k
            assert _features(examples[0]) == _vw_count(ctx)
            given = [a["features"] for a in actions] if actions else [{}] * k
            # each action: its own features, less a namespace named a_id (the id's), + its id
            assert [_features(ex) for ex in examples[1:]] == \
                [_vw_count({ns: v for ns, v in f.items() if ns != "a_id"}) + 1 for f in given]
            labels = [(i, ex.get_cbandits_class(0), ex.get_cbandits_cost(0), ex.get_cbandits_probability(0))
                      for i, ex in enumerate(examples[1:]) if ex.get_cbandits_num_costs()]
            if "_label_cost" not in event:
                assert labels == []
            else:
                chosen, prob = dsjson.chosen(event)
                value = event["o"][0]["v"]
                assert value == (reward if reward is not None else 0.0)  # hero's default is 0
                assert labels == [(chosen, chosen + 1, -value, pytest.approx(prob, rel=1e-6))]
            vw.finish_example(examples)
    vw.finish()


def test_decoded_lines_are_what_the_policy_decided_on(export):
    sent, files = export
    featurizer = Featurizer()
    for loop, path in files.items():
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            ctx, actions, _ = sent[loop][event["EventId"]]
            assert not [k for k in event["c"] if k.startswith("_") and k != "_multi"]
            context, pairs = dsjson.decode(event)
            assert context == ctx
            given = [(a["id"], a["features"]) for a in actions] if actions else \
                [(aid, {}) for aid in event["ActionIds"]]
            assert pairs == given
            decided = featurizer.transform(ctx, actions or event["ActionIds"]).X
            assert np.array_equal(featurizer.transform(context, [dict(id=a, features=f) for a, f in pairs]).X,
                                  decided)


def test_vw_driver_learns_from_every_rewarded_line(export, tmp_path):
    _, files = export
    for loop, path in files.items():
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        rewarded = [e for e in lines if "_label_cost" in e]
        assert 0 < len(rewarded) < len(lines)
        metrics = tmp_path / f"{loop}.metrics.json"
        run = subprocess.run([sys.executable, "-m", "vowpalwabbit", "--cb_explore_adf", "--dsjson",
                              "-d", str(path), "--extra_metrics", str(metrics)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert f"number of examples = {len(lines)}" in run.stderr
        m = json.loads(metrics.read_text())
        assert m["line_parse_error"] == 0 and m["number_skipped_events"] == 0
        learner = next(v for k, v in m.items() if k.startswith("cb_explore_adf"))
        assert learner["cbea_labeled_ex"] == len(rewarded)
        assert learner["cbea_sum_cost"] == pytest.approx(sum(e["_label_cost"] for e in rewarded))
