"""Candidate policies for an offline evaluation, one TOML file each.

::

    name = "linucb-alpha-0.3"                  # default: the file name without .toml
    policy = { type = "linucb", alpha = 0.3 }  # as bandits.make_policy takes it
    featurizer = { context_dim = 64 }          # optional, as in the service configuration
    snapshot = "models/recs-v7.bin"            # optional: start from a saved model (to_bytes),
                                               #   path relative to this file
    model_version = 7                          # optional: the loop's published version, read
                                               #   from the Redis the log comes from
    learn = "frozen"                           # "frozen" (default) or "replay"

``frozen``: the policy is evaluated as it is (after training on the earlier slice when
the evaluation is given ``train_fraction``) by IPS, SNIPS, DM, DR and SNDR.
``replay``: it learns as it goes and is evaluated by rejection sampling (Li et al. 2011).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass

from bandits import BanditError, load_policy, make_policy
from bandits.inputs import describe

from .errors import CandidateError

LEARN_MODES = ("frozen", "replay")
_KEYS = ("name", "policy", "featurizer", "snapshot", "model_version", "learn")


@dataclass
class Candidate:
    """A built policy with the name it is reported under and how it is evaluated."""

    name: str
    policy: object
    learn: str = "frozen"
    source: str = ""


def load_candidate(path: str, model_loader=None) -> Candidate:
    """Build the candidate of a TOML file; errors name the file and the key.

    ``model_loader(version) -> bytes | None`` reads a published model version (given
    when the log is a Redis stream).
    """
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise CandidateError(f"--policy {path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CandidateError(f"--policy {path}: invalid TOML: {exc}") from exc
    return candidate_from_mapping(raw, path, model_loader)


def candidate_from_mapping(raw: dict, path: str = "<candidate>", model_loader=None) -> Candidate:
    """:func:`load_candidate` on an already parsed mapping."""
    def fail(key, message):
        raise CandidateError(f"--policy {path}: {key}: {message}")

    for key in raw:
        if key not in _KEYS:
            fail(key, f"unknown key (allowed: {', '.join(_KEYS)})")
    name = raw.get("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(name, str) or not name:
        fail("name", "must be a non-empty string")
    learn = raw.get("learn", "frozen")
    if learn not in LEARN_MODES:
        fail("learn", f"must be one of {', '.join(LEARN_MODES)}, got {describe(learn)}")
    sources = [k for k in ("policy", "snapshot", "model_version") if k in raw]
    if len(sources) != 1:
        fail("policy", "give exactly one of policy, snapshot, model_version"
                       + (f" (got {', '.join(sources)})" if sources else ""))
    try:
        if "policy" in raw:
            policy = make_policy(raw["policy"], raw.get("featurizer"))
        elif "snapshot" in raw:
            policy = load_policy(_snapshot_bytes(raw["snapshot"], path, fail))
        else:
            policy = load_policy(_version_bytes(raw["model_version"], model_loader, fail))
    except BanditError as exc:
        fail(sources[0], str(exc))
    return Candidate(name, policy, learn, path)


def _snapshot_bytes(value, path, fail) -> bytes:
    if not isinstance(value, str):
        fail("snapshot", "must be a file path")
    full = os.path.join(os.path.dirname(os.path.abspath(path)), value)
    try:
        with open(full, "rb") as fh:
            return fh.read()
    except OSError as exc:
        fail("snapshot", f"cannot read {full}: {exc.strerror}")


def _version_bytes(value, model_loader, fail) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail("model_version", f"must be a version number >= 1, got {describe(value)}")
    if model_loader is None:
        fail("model_version", "needs --log to be the loop's Redis URL (where models are published)")
    data = model_loader(value)
    if data is None:
        fail("model_version", f"version {value} is not in Redis (the registry keeps the "
                              "last models.keep versions of a loop)")
    return data
