"""The ``cbserve`` command line: readable help with defaults, and its version."""
import configparser
import os
from importlib import metadata

import pytest

from service import cli
from service.cli import main as cbserve

SETUP_CFG = os.path.join(os.path.dirname(__file__), "..", "..", "setup.cfg")


def _setup_cfg_version():
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    return cfg["metadata"]["version"]


def _help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cbserve(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


def test_help_is_plain_text_and_whole(capsys):
    text = _help(["--help"], capsys)
    assert "``" not in text
    assert "'demo' plays simulated users against the example loops." in text
    for command in ("serve", "api", "learner", "export", "train", "demo"):
        assert f"\n    {command} " in text


def test_every_option_with_a_default_shows_it(capsys):
    text = " ".join(_help(["serve", "--help"], capsys).split())
    assert "--host HOST address to listen on (default: 127.0.0.1)" in text
    assert "--port PORT port to listen on (default: 8080)" in text
    text = " ".join(_help(["demo", "--help"], capsys).split())
    assert "(default: 3000)" in text and "(default: 0)" in text and "(default: cbserve-demo)" in text
    assert "(default: None)" not in text


def test_version_is_the_package_version(capsys):
    assert _help(["--version"], capsys).strip() == f"cbserve {_setup_cfg_version()}"


def test_version_of_a_source_checkout_comes_from_setup_cfg(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert cli.version() == _setup_cfg_version()


@pytest.mark.parametrize("n, text", [(1, "1 loop"), (2, "2 loops"), (0, "0 loops")])
def test_counts_agree_with_their_noun(n, text):
    assert cli.plural(n, "loop") == text
