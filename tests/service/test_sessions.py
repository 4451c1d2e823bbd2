"""Sequential loops: sessions in Redis with a TTL, the state the policy sees, the end
call, per-step logging, transitions export, and a switch from linucb to a Q-network
that callers cannot see."""
import gzip
import json
import time

import numpy as np
import pytest

from bandits import dsjson
from bandits.offline.onnx_mlp import mlp_onnx
from service.app import create_app
from service.cli import main as cbserve
from service.config import parse_config
from service.errors import ConfigError, Conflict
from service.store import keys

from .test_api import call

ACTIONS = ["a", "b", "c"]
STATE = {"features": ["user.x"], "history": 2, "step": True}   # d = 1 + 1 + 2 * 4 = 10


def shop(policy, ttl="10m", **loop):
    return parse_config({"service": {"publish_events": 5, "publish_seconds": 0.2}, "loops": {
        "shop": {"actions": ACTIONS, "policy": policy, "featurizer": {"context_dim": 8},
                 "session": {"ttl": ttl, "history": 5}, "reward_wait": "1m", **loop},
        "hero": {"actions": ["x", "y"]}}})


@pytest.fixture
def qmodel(tmp_path):
    W = np.zeros((10, 3))
    W[0] = [1.0, 0.0, -1.0]          # user.x favours a (x > 0) or c (x < 0)
    path = tmp_path / "q.onnx"
    path.write_bytes(mlp_onnx([(W, np.array([0.0, 0.5, 0.0]))]))
    return str(path)


def qnetwork(model, epsilon=0.1):
    return {"type": "qnetwork", "model": model, "state": STATE, "epsilon": epsilon}


def rank(client, session, x=0.0, loop="shop", status=200, **extra):
    res = call(client, "post", f"/v1/loops/{loop}/rank",
               json={"session_id": session, "context": {"user": {"x": x}}, **extra})
    assert res.status_code == status, res.get_json()
    return res.get_json()


def reward(client, event_id, value, loop="shop", status=200, **extra):
    res = call(client, "post", f"/v1/loops/{loop}/events/{event_id}/reward",
               json={"value": value, **extra})
    assert res.status_code == status, res.get_json()
    return res.get_json()


def end(client, session, loop="shop", status=200):
    res = call(client, "post", f"/v1/loops/{loop}/sessions/{session}/end")
    assert res.status_code == status, res.get_json()
    return res.get_json()


def logged(r, loop="shop"):
    return [json.loads(f[b"j"]) for _, f in r.xrange(keys.log(loop))]


def test_steps_carry_the_session_state_and_are_logged_per_step(r):
    client = create_app(shop({"type": "linucb"}), r).test_client()
    first = rank(client, "u1")
    assert first["session"] == {"id": "u1", "step": 0}
    reward(client, first["event_id"], 1.0)
    second = rank(client, "u1")
    third = rank(client, "u1")          # step 1 not rewarded yet: its reward is unknown
    assert (second["session"]["step"], third["session"]["step"]) == (1, 2)
    events = logged(r)
    assert [(e["session_id"], e["step"]) for e in events] == [("u1", 0), ("u1", 1), ("u1", 2)]
    assert "_session" not in events[0]["c"]  # metadata stays out of VW's way
    assert dsjson.state(events[0])["_session"] == {"id": "u1", "step": 0, "history": []}
    assert dsjson.state(events[2])["_session"]["history"] == [
        {"action": first["chosen"], "reward": 1.0}, {"action": second["chosen"], "reward": None}]
    assert events[2]["p"][0] == third["probability"]
    # a bandit loop refuses session ids; a sequential loop requires them
    res = call(client, "post", "/v1/loops/hero/rank", json={"session_id": "u1"})
    assert res.status_code == 400 and "not sequential" in res.get_json()["error"]["message"]
    res = call(client, "post", "/v1/loops/shop/rank", json={"context": {}})
    assert res.status_code == 400 and "session_id: required" in res.get_json()["error"]["message"]


def test_history_keeps_the_last_steps_only(r):
    client = create_app(shop({"type": "linucb"}), r).test_client()
    for i in range(8):
        reward(client, rank(client, "u")["event_id"], float(i))
    rank(client, "u")
    state = dsjson.state(logged(r)[-1])["_session"]
    assert state["step"] == 8 and [h["reward"] for h in state["history"]] == [3.0, 4.0, 5.0, 6.0, 7.0]
    # id, ep, n; actions of steps 4-8; rewards of 4-7 (step 8 awaits its reward)
    assert len(r.hkeys(keys.session("shop", "u"))) == 3 + 5 + 4


def test_a_session_expires_after_its_ttl(r):
    client = create_app(shop({"type": "linucb"}, ttl="300ms"), r).test_client()
    rank(client, "u")
    assert rank(client, "u")["session"]["step"] == 1
    assert 0 < r.pttl(keys.session("shop", "u")) <= 300
    time.sleep(0.45)
    assert not r.exists(keys.session("shop", "u"))
    assert rank(client, "u")["session"]["step"] == 0        # a new episode
    assert dsjson.state(logged(r)[-1])["_session"]["history"] == []
    end(client, "never-seen", status=404)


def test_end_call_and_end_flag_close_the_episode(r):
    client = create_app(shop({"type": "linucb"}), r).test_client()
    a = rank(client, "u")
    rank(client, "u")
    assert end(client, "u") == {"session_id": "u", "steps": 2, "status": "ended"}
    assert end(client, "u")["status"] == "already_ended"
    b = rank(client, "u")                                    # the same id starts over
    assert b["session"]["step"] == 0
    reward(client, a["event_id"], 1.0)                       # an old step's reward still counts
    assert reward(client, b["event_id"], 0.5, end=True)["status"] == "accepted"
    assert end(client, "u")["status"] == "already_ended"
    assert rank(client, "u")["session"]["step"] == 0
    stats = client.get("/v1/loops/shop").get_json()["counters"]
    assert (stats["sessions"], stats["sessions_ended"]) == (3, 2)
    # refused: end on a bandit loop, a bad flag, an unknown field
    hero = call(client, "post", "/v1/loops/hero/rank", json={}).get_json()
    reward(client, hero["event_id"], 1.0, loop="hero", status=400, end=True)
    end(client, "u", loop="hero", status=400)
    reward(client, b["event_id"], 0.5, status=400, end="yes")
    res = call(client, "post", "/v1/loops/shop/sessions/u/end", json={"why": "done"})
    assert res.status_code == 400 and "why" in res.get_json()["error"]["message"]


def test_a_step_decided_on_a_stale_state_is_refused(r):
    client = create_app(shop({"type": "linucb"}), r).test_client()
    service = client.application.extensions["cbserve"]["loops"]["shop"]
    stale = service.store.session("u")
    rank(client, "u")
    with pytest.raises(Conflict, match="moved to step 1 while step 0 was decided"):
        service.store.log_decision("e-stale", b"{}", False, 0.001, stale, version=0, action="a",
                                   propensity=1.0, explored=False)
    assert not r.exists(keys.event("shop", "e-stale"))


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_switching_linucb_to_qnetwork_changes_nothing_for_callers(r, qmodel):
    shapes = []
    for policy in ({"type": "linucb", "alpha": 0.5}, qnetwork(qmodel)):
        r.flushall()
        client = create_app(shop(policy), r).test_client()
        out = rank(client, "u", x=2.0)
        shapes.append((_shape(out), _shape(reward(client, out["event_id"], 1.0)),
                       _shape(rank(client, "u", exclude=["b"])), _shape(end(client, "u"))))
        assert logged(r)[0].keys() == {"EventId", "Timestamp", "Version", "c", "a", "p", "loop",
                                       "ActionIds", "deferred", "policy", "session_id", "step", "orig"}
    assert shapes[0] == shapes[1]


def test_qnetwork_serves_argmax_q_with_the_logged_propensity(r, qmodel):
    client = create_app(shop(qnetwork(qmodel, epsilon=0.3)), r).test_client()
    greedy = 1 - 0.3 + 0.3 / 3
    for i, x in enumerate(np.linspace(-2, 2, 30)):
        out = rank(client, f"s{i}", x=float(x))
        best = max(out["ranking"], key=lambda a: a["score"])["id"]
        assert best == ("a" if x > 0.5 else "c" if x < -0.5 else "b")
        assert out["probability"] == pytest.approx(greedy if out["chosen"] == best else 0.1)
        assert logged(r)[-1]["p"][0] == out["probability"]
        assert out["model"]["policy"] == "qnetwork"


def test_bad_model_or_missing_session_table_fails_at_start_up(tmp_path, qmodel, capsys):
    with pytest.raises(ConfigError, match=r"loops\.shop\.policy\.model: cannot read"):
        shop(qnetwork(str(tmp_path / "missing.onnx")))
    narrow = tmp_path / "narrow.onnx"
    narrow.write_bytes(mlp_onnx([(np.zeros((10, 2)), np.zeros(2))]))
    with pytest.raises(ConfigError, match=r"loops\.shop\.policy\.model: .*one Q-value per action"):
        shop(qnetwork(str(narrow)))
    with pytest.raises(ConfigError, match=r"loops\.shop\.session: required"):
        parse_config({"loops": {"shop": {"actions": ACTIONS, "policy": qnetwork(qmodel)}}})
    with pytest.raises(ConfigError, match=r"loops\.shop\.session\.ttl"):
        shop({"type": "linucb"}, ttl="soon")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[loops.shop]\nactions = ["a", "b", "c"]\nsession = {{}}\n'
                   f'policy = {{ type = "qnetwork", model = "{tmp_path}/gone.onnx" }}\n')
    assert cbserve(["serve", "--config", str(cfg)]) == 2
    assert "loops.shop.policy.model: cannot read" in capsys.readouterr().err


def test_exported_transitions_are_complete_and_ordered(r, redis_server, tmp_path, monkeypatch,
                                                       capsys):
    client = create_app(shop({"type": "linucb"}), r).test_client()
    steps = {}
    for s, n in (("s1", 3), ("s2", 2), ("s3", 2), ("s4", 2)):
        steps[s] = [rank(client, s, x=float(i)) for i in range(n)]
    for s in ("s1", "s2", "s3", "s4"):
        for i, out in enumerate(steps[s]):
            if (s, i) != ("s4", 0):                       # s4's first step awaits its reward
                last = i == len(steps[s]) - 1
                reward(client, out["event_id"], float(i + 1), end=last and s == "s1")
    end(client, "s2")                                     # s3 stays live: its last step waits
    again = rank(client, "s1", x=9.0)                     # s1's second episode, live
    reward(client, again["event_id"], 5.0)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[loops.shop]\nactions = ["a", "b", "c"]\nsession = {}\n[loops.hero]\n')
    out = tmp_path / "t.jsonl.gz"
    assert cbserve(["export", "--config", str(cfg), "--loop", "shop", "--transitions",
                    "-o", str(out)]) == 0
    rows = [json.loads(line) for line in gzip.open(out, "rt")]
    assert [(t["session_id"], t["step"]) for t in rows] == [
        ("s1", 0), ("s1", 1), ("s1", 2), ("s2", 0), ("s2", 1), ("s3", 0)]   # s4: both wait
    for t, nxt in zip(rows, rows[1:]):
        if not t["done"]:
            assert t["s_next"] == nxt["s"] and nxt["step"] == t["step"] + 1
    assert [t["done"] for t in rows] == [False, False, True, False, True, False]
    assert rows[2]["end"] == rows[4]["end"] == "ended"
    first = steps["s1"][0]
    assert rows[0]["event_id"] == rows[0]["episode"] == first["event_id"]
    assert (rows[0]["action"], rows[0]["p"], rows[0]["r"]) == (first["chosen"], first["probability"], 1.0)
    assert rows[0]["actions"] == ACTIONS and sum(rows[0]["pmf"]) == pytest.approx(1.0)
    # s is the state the policy saw: step 1 was decided before step 0's reward came
    assert rows[1]["s"]["_session"]["history"] == [{"action": first["chosen"], "reward": None}]
    assert rows[0]["s"]["user"] == {"x": 0.0} and "_multi" not in rows[0]["s"]
    out_text = capsys.readouterr().out
    assert "6 transitions of 5 episodes" in out_text and "1 steps awaiting their reward" in out_text
    assert "3 last steps of live sessions" in out_text           # s1's 2nd episode, s3, s4
    assert cbserve(["export", "--config", str(cfg), "--loop", "hero", "--transitions",
                    "-o", str(out)]) == 2
    assert "--transitions: loop 'hero' is not sequential" in capsys.readouterr().err


def test_a_sequential_plugin_plugs_in_by_configuration(r, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parents[2]
                                    / "examples" / "plugins"))
    client = create_app(shop({"type": "no_repeat:NoRepeat", "window": 2, "epsilon": 0.3}),
                        r).test_client()
    seen = [rank(client, "u")["chosen"] for _ in range(2)]
    third = rank(client, "u")
    free = set(ACTIONS) - set(seen)   # not shown in the last two steps: score 0, else -1
    got = {a["id"]: (a["score"], a["probability"]) for a in third["ranking"]}
    assert got == {a: (0.0, pytest.approx(0.7 / len(free) + 0.1)) if a in free else
                   (-1.0, pytest.approx(0.1)) for a in ACTIONS}
    assert third["model"]["policy"] == "no_repeat"
    with pytest.raises(ConfigError, match=r"loops\.shop\.session: required"):
        parse_config({"loops": {"shop": {"actions": ACTIONS,
                                         "policy": {"type": "no_repeat:NoRepeat"}}}})
