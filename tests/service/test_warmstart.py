"""cbserve train (service.warmstart): a snapshot trained from a log decides exactly as a
policy that learned the same feedback in the same order in-process, from cbserve's own
export and from VW's layout, and serves once uploaded and deployed; bad input is one
line naming the option, exit 2."""
import json

import numpy as np
import pytest

from bandits import Feedback, dsjson, load_policy
from replay.simulated import write_dsjson
from service import learner, models, warmstart
from service.checks import run_checks
from service.cli import main
from service.config import load_config
from tests.replay.test_vw_layouts import CB_LINES, SKIP, UNREWARDED

CONFIG = """
[loops.recs]
policy = {type = "linucb", alpha = 0.5, epsilon = 0.05}
featurizer = {context_dim = 16, action_dim = 8, interaction_dim = 8}

[loops.vw]
actions = ["1", "2", "3"]
policy = {type = "epsilon_greedy", epsilon = 0.2, model = "disjoint"}
featurizer = {context_dim = 8, interaction_dim = 0}

[loops.hero]
actions = ["hero-a", "hero-b"]
policy = {type = "epsilon_greedy", model = "disjoint"}
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "cbserve.toml"
    path.write_text(CONFIG)
    return str(path)


def train(cfg, loop, log, out, *extra):
    return main(["train", "--config", cfg, "--loop", loop, "--log", str(log), "-o", str(out), *extra])


def in_process(policy, feedback):
    """Learn as the learner does: batches of learner.BATCH, in order."""
    for start in range(0, len(feedback), learner.BATCH):
        policy.learn(feedback[start:start + learner.BATCH])
    return policy


def same_decisions(a, b, inputs):
    for context, actions in inputs:
        da, db = a.decide(context, actions), b.decide(context, actions)
        assert np.array_equal(da.pmf, db.pmf) and np.array_equal(da.scores, db.scores)


def test_the_batch_is_the_learners():
    assert warmstart.BATCH == learner.BATCH


def test_trained_from_an_export_it_decides_as_the_learner_would(cfg, events, tmp_path, capsys):
    log, out = tmp_path / "export.json.gz", tmp_path / "model.bin"
    unrewarded = {k: v for k, v in events[0].items() if not k.startswith("_label") and k != "o"}
    write_dsjson(events + [unrewarded], str(log))
    assert train(cfg, "recs", log, out) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("trained linucb for loop recs from export.json.gz: 601 events read, "
                           "600 learned; skipped: 1 unrewarded;") and "\n" not in line
    trained = load_policy(out.read_bytes())
    loop = load_config(cfg).loops["recs"]
    expected = in_process(loop.new_policy(), [dsjson.to_feedback(e, -e["_label_cost"]) for e in events])
    inputs = [dsjson.decode(e)[0:1] + ([{"id": a, "features": f} for a, f in dsjson.decode(e)[1]],)
              for e in events[::37]]
    same_decisions(trained, expected, inputs)
    assert trained.to_bytes() == expected.to_bytes()
    assert run_checks(out.read_bytes(), loop, events, latency_budget_ms=1000.0).passed


def test_export_train_upload_deploy_serves_the_trained_model(cfg, events, tmp_path, client, monkeypatch):
    """The warm start of docs/lifecycle.md, end to end (the app's recs loop is cfg's)."""
    monkeypatch.setattr(models, "REFRESH_S", 0.0)
    log, out = tmp_path / "yesterday.json.gz", tmp_path / "recs.bin"
    write_dsjson(events, str(log))
    assert train(cfg, "recs", log, out) == 0
    up = client.post("/v1/loops/recs/models", data=out.read_bytes(), query_string={"reason": "warm start"},
                     headers={"Content-Type": "application/octet-stream"})
    assert up.status_code == 201, up.get_json()
    version = up.get_json()["version"]
    deploy = {"version": version, "learn": True, "force": True, "reason": "warm start"}
    assert client.post("/v1/loops/recs/deploy", json=deploy).status_code == 200
    context, pairs = dsjson.decode(events[0])
    actions = [{"id": a, "features": f} for a, f in pairs]
    body = client.post("/v1/loops/recs/rank", json={"context": context, "actions": actions}).get_json()
    assert body["model"]["version"] == version
    expected = load_policy(out.read_bytes()).decide(context, actions)
    served = {item["id"]: item["probability"] for item in body["ranking"]}
    assert [served[a] for a in expected.action_ids] == expected.pmf.tolist()


def test_trained_from_vw_layout_with_positional_actions(cfg, tmp_path, capsys):
    log, out = tmp_path / "vw.json", tmp_path / "model.bin"
    log.write_text("\n".join(json.dumps(e) for e in CB_LINES + [SKIP, UNREWARDED]) + "\nnot json\n")
    assert train(cfg, "vw", log, out) == 0
    assert "9 events read, 6 learned; skipped: 1 unrewarded, 1 _skipLearn, 1 malformed" \
        in capsys.readouterr().out
    feedback = []
    for e in CB_LINES:
        context, pairs = dsjson.decode(e)
        feedback.append(Feedback(context, [{"id": a, "features": f} for a, f in pairs],
                                 e["_labelIndex"], e["_label_probability"], -e["_label_cost"]))
    expected = in_process(load_config(cfg).loops["vw"].new_policy(), feedback)
    same_decisions(load_policy(out.read_bytes()), expected,
                   [(fb.context, fb.actions) for fb in feedback])


def test_a_policy_spec_from_json_or_toml(cfg, events, tmp_path, capsys):
    log = tmp_path / "export.json"
    write_dsjson(events[:50], str(log))
    spec = tmp_path / "policy.toml"
    spec.write_text('type = "epsilon_greedy"\nepsilon = 0.3\n')
    assert train(cfg, "recs", log, tmp_path / "a.bin", "--policy", str(spec)) == 0
    assert train(cfg, "recs", log, tmp_path / "b.bin", "--policy", '{"type": "epsilon_greedy", "epsilon": 0.3}') == 0
    a, b = (load_policy((tmp_path / n).read_bytes()) for n in ("a.bin", "b.bin"))
    assert a.name == "epsilon_greedy" and a.epsilon == 0.3 and a.to_bytes() == b.to_bytes()


@pytest.mark.parametrize("args, message", [
    (["--loop", "nope"], "cbserve: --loop: unknown loop 'nope' (configured: recs, vw, hero)"),
    (["--log", "missing.json"], "cbserve: --log: no such file"),
    (["--log", "unrewarded.json"], "cbserve: --log: no rewarded event of"),
    (["--loop", "hero"], "VW's own logs name actions 1..K by position"),
    (["--policy", "{oops"], "cbserve: --policy: not a JSON object"),
    (["--policy", "absent.toml"], "cbserve: --policy: cannot read 'absent.toml'"),
    (["--policy", '{"type": "linucb", "alpah": 1}'], "cbserve: --policy: alpah: unknown parameter"),
    (["-o", "no/such/dir/model.bin"], "cbserve: -o/--output: cannot write"),
])
def test_bad_input_is_one_line_naming_the_option(cfg, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vw.json").write_text("\n".join(json.dumps(e) for e in CB_LINES) + "\n")
    (tmp_path / "unrewarded.json").write_text(json.dumps(UNREWARDED) + "\n")
    base = {"--loop": "vw", "--log": "vw.json", "-o": "model.bin"}
    base.update(zip(args[::2], args[1::2]))
    assert main(["train", "--config", cfg, *[x for kv in base.items() for x in kv]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "model.bin").exists()


def test_multi_slot_decisions_are_learned_slot_by_slot(cfg, tmp_path, capsys):
    """A log of slates: each fully rewarded slate's slots learned as the learner learns
    them; a slate with a slot unrewarded is left out and counted."""
    from bandits import EpsilonGreedy, dsjson_slots
    from bandits.slates import Slot, decide_slots

    rng = np.random.default_rng(3)
    slots = [Slot("s1", {"pos": {"p1": 1}}), Slot("s2", {"pos": {"p2": 1}})]
    lines, records = [], []
    for i in range(40):
        pairs = [(f"item-{j}", {"item": {"price": float(j)}}) for j in rng.choice(9, 4, replace=False)]
        context = {"user": {"age": float(rng.integers(18, 70))}}
        chosen = decide_slots(EpsilonGreedy(epsilon=0.5).decide, context, pairs, slots, seed=0, event_id=f"e{i}")
        event = dsjson_slots.slots_event(loop="recs", event_id=f"e{i}", epoch_s=0.0, context=context,
                                         actions=pairs, slates=chosen, policy="epsilon_greedy",
                                         version=0, deferred=False)
        rewards = {"s1": (float(i % 2), "reward")} if i == 39 else \
            {"s1": (float(i % 2), "reward"), "s2": (float(i % 3), "default")}
        labelled = dsjson_slots.with_slot_labels(event, rewards)
        lines.append(json.dumps(labelled))
        if i < 39:
            records.append(dsjson_slots.decode_slots(labelled))
    log, out = tmp_path / "slates.json", tmp_path / "model.bin"
    log.write_text("\n".join(lines) + "\n")
    assert train(cfg, "recs", log, out) == 0
    line = capsys.readouterr().out
    assert "40 events read, 78 learned (78 of them slots of multi-slot decisions)" in line
    assert "1 multi-slot with a slot unrewarded" in line
    loop = load_config(cfg).loops["recs"]
    expected = in_process(loop.new_policy(), [dsjson_slots.slot_feedback(r, j) for r in records
                                              for j in range(2)])
    assert load_policy(out.read_bytes()).to_bytes() == expected.to_bytes()
