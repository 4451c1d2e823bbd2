"""`cbserve models`: the model routes of a real service (werkzeug on a free port, a real
Redis) from the command line: list, show, snapshot, upload, deploy, pin, roll back,
audit; the service's refusals as one line and exit status 1."""
import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import urllib.request

import pytest
from werkzeug.serving import make_server

from service import models_cli, models_format
from service.api.body import request_handler
from service.app import create_app
from service.cli import main as cbserve
from service.testing.redis_server import free_port

from . import test_challengers as challengers
from .test_lifecycle import ADMIN, DECIDE, KEYS, Traffic


@pytest.fixture
def app(config, r):
    return create_app(config, r, keys=KEYS)


@contextlib.contextmanager
def serving(app, config):
    """``app`` over HTTP on a free port (werkzeug, as ``cbserve serve``): its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True,
                         request_handler=request_handler(config.read_timeout))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def url(app, config, monkeypatch):
    """The app served over HTTP; the CLI pointed at it with the admin key."""
    with serving(app, config) as base:
        monkeypatch.setenv("CBSERVE_URL", base)
        monkeypatch.setenv("CBSERVE_API_KEY", ADMIN)
        yield base


@pytest.fixture
def traffic(app, config, r):
    return Traffic(app.test_client(), config, r)


def models(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``cbserve models ARGV --loop recs``."""
    status = cbserve(["models", *argv, "--loop", "recs"])
    out, err = capsys.readouterr()
    return status, out, err


def table(out):
    """The rows of a table printed after its one-line heading, as ``{column: cell}``."""
    lines = out.splitlines()[1:]
    headers = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(headers, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]


def _http(url, path):
    req = urllib.request.Request(url + path, headers={"X-API-Key": ADMIN})
    with urllib.request.urlopen(req, timeout=10) as res:
        return res.read()


def test_list_and_show_a_loops_versions(url, traffic, capsys):
    traffic.learn()
    traffic.learn()
    status, out, err = models(capsys, "list")
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == "loop recs: serving version 2, learning"
    one, two = table(out)
    assert (one["VERSION"], one["SOURCE"], one["PARENT"], one["EVENTS LEARNED"]) == ("1", "learner", "-", "10")
    assert (two["VERSION"], two["PARENT"], two["EVENTS LEARNED"], two["STATUS"]) == ("2", "1", "20", "serving")
    assert "STATUS" not in one  # no status: it served, and serves no more
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", one["CREATED (UTC)"])
    status, out, _ = models(capsys, "list", "--json")
    assert status == 0 and out == _http(url, "/v1/loops/recs/models").decode()
    status, out, _ = models(capsys, "show", "2")
    assert status == 0
    assert "version: 2\n" in out and "parent: 1\n" in out and "source: learner\n" in out
    assert "serving: yes" in out and "policy: linucb {" in out
    status, out, _ = models(capsys, "show", "2", "--json")
    assert json.loads(out) == json.loads(_http(url, "/v1/loops/recs/models/2"))


def test_snapshot_upload_pin_roll_back_and_the_audit(url, traffic, capsys, tmp_path):
    for _ in range(3):
        traffic.learn()
    path = tmp_path / "v2.model"
    status, out, _ = models(capsys, "snapshot", "2", "-o", str(path))
    assert status == 0 and out.strip() == f"wrote {path.stat().st_size} bytes (version 2 of loop recs) to {path}"
    assert path.read_bytes() == _http(url, "/v1/loops/recs/models/2/snapshot")

    status, out, _ = models(capsys, "upload", str(path), "--reason", "v2 again")
    assert status == 0 and out.startswith(f"uploaded {path} as version 4 of loop recs\n")
    assert "source: upload" in out and "checks: passed" in out
    assert out.rstrip().endswith("cbserve models deploy 4 --force --loop recs")
    entry = json.loads(_http(url, "/v1/loops/recs/models/4"))
    assert (entry["source"], entry["served"]) == ("upload", False)

    status, out, _ = models(capsys, "deploy", "2", "--pin", "--reason", "incident: bot traffic")
    assert status == 0
    assert out.strip() == ("loop recs serves version 2, was 3; pinned: it learns nothing "
                           "until a deploy without --pin")
    pointer = json.loads(_http(url, "/v1/loops/recs/models"))
    assert (pointer["serving"], pointer["learning"]) == (2, False)
    status, out, _ = models(capsys, "list")
    assert out.splitlines()[0] == "loop recs: serving version 2, pinned (learning nothing)"
    marks = {row["VERSION"]: row.get("STATUS") for row in table(out)}
    assert marks == {"1": None, "2": "serving (pinned)", "3": None, "4": "never served"}

    status, out, _ = models(capsys, "deploy", "1", "--reason", "CTR fell after v2")
    assert status == 0 and out.strip() == "loop recs serves version 1, was 2; the learner continues from it"
    pointer = json.loads(_http(url, "/v1/loops/recs/models"))
    assert (pointer["serving"], pointer["learning"]) == (1, True)

    status, out, _ = models(capsys, "audit", "--count", "5")
    assert status == 0
    rows = table("\n" + out)
    assert [(r["ACTION"], r["KEY"], r["VERSION"], r["FROM"], r["LEARN"]) for r in rows] == [
        ("deploy", "ops", "1", "2", "yes"), ("pin", "ops", "2", "3", "no"), ("upload", "ops", "4", "-", "-")]
    assert [r.get("REASON") for r in rows] == ["CTR fell after v2", "incident: bot traffic", "v2 again"]
    status, out, _ = models(capsys, "audit", "--json")
    assert [e["action"] for e in json.loads(out)["entries"]] == ["deploy", "pin", "upload"]


def test_a_refusal_is_one_line_naming_the_route_and_exit_status_1(url, traffic, capsys):
    traffic.learn()
    status, out, err = models(capsys, "show", "9")
    assert (status, out) == (1, "")
    assert err == ("cbserve: GET /v1/loops/recs/models/9: 404 not_found: loop 'recs' has no "
                   "model version 9 (kept: 1..1)\n")
    status, _, err = models(capsys, "deploy", "9", "--force")
    assert status == 1 and err.startswith("cbserve: POST /v1/loops/recs/deploy: 404 not_found: ")
    path_less = cbserve(["models", "list", "--loop", "nope"])
    assert path_less == 1 and "GET /v1/loops/nope/models: 404" in capsys.readouterr().err
    status, _, err = models(capsys, "audit", "--count", "0")
    assert status == 1 and "400 bad_request: count: must be an integer from 1 to 1000" in err
    assert "Traceback" not in err


def test_a_key_without_the_admin_role_is_told_which_one_is_needed(url, traffic, capsys, monkeypatch):
    traffic.learn()
    monkeypatch.setenv("CBSERVE_API_KEY", DECIDE)
    status, _, err = models(capsys, "deploy", "1")
    assert status == 1
    assert err.strip() == ("cbserve: POST /v1/loops/recs/deploy: 403 forbidden: key 'web' (role decide) "
                           "may not use admin routes on loop 'recs' (these routes need a key of role "
                           "admin for the loop, in CBSERVE_API_KEY)")
    assert DECIDE not in err
    monkeypatch.delenv("CBSERVE_API_KEY")
    status, _, err = models(capsys, "list")
    assert status == 1 and "401 unauthorized" in err and "set CBSERVE_API_KEY to a key of role admin" in err
    monkeypatch.setenv("CBSERVE_API_KEY", "not-a-key-of-this-service")
    status, _, err = models(capsys, "list")
    assert status == 1 and "CBSERVE_API_KEY matches no key of this service" in err
    assert "not-a-key" not in err


def test_a_service_that_does_not_answer_is_named(capsys, monkeypatch):
    port = free_port()
    monkeypatch.delenv("CBSERVE_URL", raising=False)
    status, out, err = models(capsys, "list", "--url", f"http://127.0.0.1:{port}")
    assert (status, out) == (1, "")
    assert err == (f"cbserve: cannot connect to http://127.0.0.1:{port}: connection refused (is "
                   "cbserve running there? give --url or set CBSERVE_URL)\n")
    status, _, err = models(capsys, "list", "--url", f"127.0.0.1:{port}")
    assert status == 2 and err == f"cbserve: --url: must be an http:// or https:// URL, got '127.0.0.1:{port}'\n"


def test_the_default_url_is_where_cbserve_serve_listens(capsys):
    from service.cli import parser

    args = parser().parse_args(["serve"])
    assert models_cli.DEFAULT_URL == f"http://{args.host}:{args.port}"


def test_local_files_that_cannot_be_read_or_written_exit_2(url, traffic, capsys, tmp_path):
    traffic.learn()
    status, _, err = models(capsys, "upload", str(tmp_path / "missing.bin"))
    assert status == 2 and err.startswith("cbserve: FILE: cannot read ")
    status, _, err = models(capsys, "snapshot", "1", "-o", str(tmp_path / "no" / "such" / "dir"))
    assert status == 2 and err.startswith("cbserve: -o/--output: cannot write ")


def test_cbserve_models_list_as_a_command(url, traffic):
    traffic.learn()
    exe = os.path.join(os.path.dirname(sys.executable), "cbserve")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "service.cli"]
    done = subprocess.run(argv + ["models", "list", "--loop", "recs"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "CBSERVE_URL": url, "CBSERVE_API_KEY": ADMIN})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0] == "loop recs: serving version 1, learning"


def test_live_figures_are_shown_when_the_service_gives_them():
    answer = {"serving": 2, "learning": True, "models": [
        {"version": 1, "source": "learner", "created": 0, "parent": None, "events_learned": 10,
         "served": True, "serving": False},
        {"version": 2, "source": "learner", "created": 60.5, "parent": 1, "events_learned": 20,
         "served": True, "serving": True,
         "figures": {"decisions": 1200, "rewards": 800, "mean_reward": 0.4125, "low": 0.39, "high": 0.4331}}]}
    one, two = table(models_format.format_list(answer, "recs"))
    assert one == {"VERSION": "1", "SOURCE": "learner", "CREATED (UTC)": "1970-01-01 00:00:00",
                   "PARENT": "-", "EVENTS LEARNED": "10", "DECISIONS": "-", "MEAN REWARD": "-"}
    assert (two["CREATED (UTC)"], two["DECISIONS"], two["MEAN REWARD"], two["STATUS"]) == (
        "1970-01-01 00:01:00", "1200", "0.4125 [0.3900, 0.4331]", "serving")
    answer["models"][1].pop("figures")
    assert "DECISIONS" not in models_format.format_list(answer, "recs")


def test_a_version_that_never_served_is_refused_with_the_way_past_the_gate(url, traffic, capsys, tmp_path):
    traffic.learn()
    path = tmp_path / "v1.model"
    assert models(capsys, "snapshot", "1", "-o", str(path))[0] == 0
    assert models(capsys, "upload", str(path))[0] == 0
    status, _, err = models(capsys, "deploy", "2")
    assert status == 1 and err.startswith("cbserve: POST /v1/loops/recs/deploy: 409 conflict: version 2 ")
    assert err.rstrip().endswith("(--force overrides the gate; the audit records it)")
    status, out, _ = models(capsys, "deploy", "2", "--force", "--json")
    assert status == 0 and json.loads(out) == {"serving": 2, "previous": 1, "learning": True}


def test_a_refusal_that_is_not_json_is_shown_as_text():
    plain = models_cli.refusal("GET /v1/loops/recs/models", 502, b"<html>Bad Gateway</html>", True)
    assert plain.message == "GET /v1/loops/recs/models: 502 <html>Bad Gateway</html>"
    assert plain.details == ""


@pytest.fixture
def hero(r, monkeypatch):
    """The challengers' loop of test_challengers (hero: a flat champion, a contextual and
    a uniform challenger; the gate wants 400 events), served over HTTP, 60 events in."""
    config = challengers.make_config()
    loop = challengers.Loop(config, r)
    loop.run(60)
    monkeypatch.setenv("CBSERVE_API_KEY", ADMIN)
    with serving(create_app(config, r, keys=KEYS), config) as base:
        yield base


def hero_models(capsys, url, *argv):
    status = cbserve(["models", *argv, "--loop", "hero", "--url", url])
    out, err = capsys.readouterr()
    return status, out, err


def test_challengers_are_a_row_each_with_their_figures_and_the_gate(hero, capsys):
    status, out, err = hero_models(capsys, hero, "challengers")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert re.fullmatch(r"loop hero: serving version \d+; promotion manual: dr lower bound >= champion "
                        r"\+ 0, at least 400 events and an ESS of 50", lines[0])
    rows = table(out)[:2]
    assert [r["CHALLENGER"] for r in rows] == ["contextual", "uniform"]
    assert all(r["EVENTS"] == "60" and r["VERDICT"] == "undecided" for r in rows)
    assert re.fullmatch(r"\d\.\d{4}( \[-?\d\.\d{4}, \d\.\d{4}\])?", rows[1]["SNIPS"])
    assert "contextual: the gate refuses: 60 events < min_events 400" in out
    status, out, _ = hero_models(capsys, hero, "challengers", "--json")
    assert json.loads(out) == json.loads(_http(hero, "/v1/loops/hero/challengers"))


def test_a_promotion_the_gate_refuses_is_exit_1_with_its_figures(hero, capsys):
    status, out, err = hero_models(capsys, hero, "promote", "contextual", "--reason", "looks better")
    assert (status, out) == (1, "")
    first, *details = err.splitlines()
    assert first.startswith("cbserve: POST /v1/loops/hero/promote: 409 gate_refused: challenger "
                            "'contextual' of loop 'hero' did not pass the gate: 60 events < min_events 400")
    assert first.endswith("(--force overrides the gate; the audit records it)")
    assert details[0] == "  figures:" and "    n: 60" in details
    assert any(line.startswith("    champion: ") for line in details)
    assert "Traceback" not in err


def test_an_unknown_challenger_is_exit_1_naming_the_configured_ones(hero, capsys):
    status, _, err = hero_models(capsys, hero, "promote", "nope")
    assert status == 1
    assert err == ("cbserve: POST /v1/loops/hero/promote: 404 not_found: loop 'hero' has no challenger "
                   "'nope' (challengers: contextual, uniform)\n")


def test_cbserve_help_names_models_and_every_documented_command_parses():
    from service.cli import parser

    assert "models" in parser().format_help()
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "lifecycle.md")).read()
    lines = re.findall(r"^(?:\$ )?cbserve (models .*?)(?:\s+#.*)?$", doc, re.M)
    assert len(lines) >= 8
    for line in lines:
        args = parser().parse_args(shlex.split(line))
        assert args.command == "models" and args.loop == "recs"
