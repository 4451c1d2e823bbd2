"""Deploying, pinning and uploading model versions of one loop (the registry's rules).

The registry itself, its serving pointer and its audit stream live in Redis
(:mod:`service.store.registry`); this module checks what a request may do before the
store moves anything: the version exists and was built for the loop's policy, a version
that never served is deployed only with ``force``, an upload loads with the loop's
policy class. Every outcome is audited by the store's scripts. ``service`` is the
loop's :class:`service.loops.LoopService`.
"""
from __future__ import annotations

import json
import time

from bandits import BanditError

from .checks import MAX_DECISIONS, run_checks
from .errors import CheckFailed, Conflict, InvalidSnapshot, NotFound
from .figures import live_figures
from .models import servable, spec_text


def deploy(service, version: int, learn: bool, force: bool, key: str,
           reason: str) -> dict:
    """Make ``version`` the serving one (``learn``: the learner continues from it; else
    the loop is pinned to it). 404 for an unknown version, 409 for one built for another
    policy specification or one that never served without ``force``."""
    name, registry = service.loop.name, service.registry
    entry = registry.entry(version)
    if entry is None:
        raise NotFound(unknown_message(service, version))
    variant = servable(service.loop).get(entry.get("spec"))
    if variant is None:
        raise Conflict(f"version {version} of loop {name!r} was built for another policy or "
                       "featurizer than the loop's configuration, and workers do not serve it")
    blob = service.store.model_bytes(version)
    if blob is None:
        raise NotFound(unknown_message(service, version))
    report = checks(service, blob, variant)
    failed = report.first_failure()
    if failed is not None:  # never overridable, force or not
        registry.refuse(version, key, f"check {failed.name} failed: {failed.message}")
        raise CheckFailed(f"version {version} of loop {name!r}: the pre-deployment check "
                          f"{failed.name!r} failed: {failed.message}")
    basis = {"figures": live_figures(*registry.figures([version])[version]),
             "checks": {c.name: c.passed for c in report.checks}}
    status, previous = registry.deploy(version, learn, force, key, reason,
                                       json.dumps(basis, separators=(",", ":")))
    if status == "unknown":  # dropped between the two reads
        raise NotFound(unknown_message(service, version))
    if status == "gate":
        raise Conflict(f"version {version} of loop {name!r} never served, and a version that "
                       "never served needs force: true to pass the gate (the refusal is "
                       "in the audit)")
    return {"serving": version, "previous": previous, "learning": learn}


def checks(service, blob: bytes, loop=None):
    """The pre-deployment checks of ``blob`` on the loop's last logged decisions
    (``loop``: the loop as that version serves it, by default the configured one)."""
    return run_checks(blob, loop or service.loop, service.store.recent_decisions(MAX_DECISIONS),
                      service.config.models_check_latency * 1000.0)


def unknown_message(service, version: int) -> str:
    kept = [e["version"] for e in service.registry.entries()]
    shown = f"{kept[0]}..{kept[-1]}" if kept else "none yet"
    return f"loop {service.loop.name!r} has no model version {version} (kept: {shown})"


def upload(service, blob: bytes, key: str, reason: str) -> dict:
    """Register ``blob`` as a new version that never served, with its pre-deployment
    checks; 422 naming the problem when the loop's policy class cannot load it."""
    cls = type(service.loop.new_policy())
    try:
        policy = cls.from_bytes(blob)
    except BanditError as exc:
        raise InvalidSnapshot(f"snapshot: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign snapshot is its fault
        raise InvalidSnapshot(f"snapshot: cannot be loaded as a {cls.name} policy "
                              f"({type(exc).__name__}: {exc})") from exc
    learned = getattr(policy, "n_learned", None)
    entry = {"created": time.time(), "parent": None, "source": "upload",
             "events_learned": learned if isinstance(learned, int) else None,
             "policy": {"name": policy.name, "params": policy.get_params()},
             "spec": spec_text(service.loop), "bytes": len(blob),
             "checks": checks(service, blob).to_dict()}
    version = service.registry.upload(blob, entry, key, reason)
    return shown(service, [service.registry.entry(version)], serving_version(service))[0]


def serving_version(service) -> int:
    return int(service.registry.serving().get("version", 0))


def shown(service, entries: list, serving: int) -> list:
    """``entries`` of the registry as the API shows them, with their live figures (read
    in one call); ``serving`` is the version the serving pointer names."""
    figures = service.registry.figures([e["version"] for e in entries])
    return [describe(e, serving, figures[e["version"]]) for e in entries]


def describe(entry: dict, serving: int, figures: tuple) -> dict:
    """A registry entry as the API shows it (``serving``: whether the pointer names it;
    ``figures``: its counts ``(decisions, rewards, reward sum, sum of squares)``)."""
    out = {k: v for k, v in entry.items() if k != "spec"}
    out["serving"] = entry["version"] == serving
    out["figures"] = live_figures(*figures)
    return out
