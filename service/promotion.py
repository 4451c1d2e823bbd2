"""Promoting a challenger: the gate, the pre-deployment checks, then one atomic script.

Used by ``POST /v1/loops/<loop>/promote`` and by the learner in ``promotion.mode =
"auto"``. ``owner`` is whoever holds the loop's stores: an API worker's
:class:`service.loops.LoopService` or the learner's
:class:`service.learner.LoopLearner` (attributes ``loop``, ``config``, ``store``,
``registry``). A refusal (gate or check) is audited with the figures it was judged on;
a promotion either happens whole (version registered, served, learned from, audited,
windows emptied) or not at all.
"""
from __future__ import annotations

import json
import time

from bandits import BanditError, load_policy

from .challengers import gate, verdict
from .checks import MAX_DECISIONS, run_checks
from .errors import CheckFailed, Conflict, GateRefused, NotFound
from .models import servable
from .store.challengers import ChallengerStore


def store_of(owner) -> ChallengerStore:
    """The owner's :class:`ChallengerStore` (built once)."""
    found = getattr(owner, "_challenger_store", None)
    if found is None:
        found = owner._challenger_store = ChallengerStore(owner.store.r, owner.loop)
    return found


def report(owner) -> dict:
    """What ``GET /v1/loops/<loop>/challengers`` shows: the champion's value over the
    window, and each challenger's figures, verdict and gate."""
    loop, rule = owner.loop, owner.loop.promotion
    figs = store_of(owner).figures()
    serving = int(owner.registry.serving().get("version", 0))
    rows, champion = [], None
    for c in loop.challengers:
        fig = figs.get(c.name)
        if fig is not None and champion is None:
            champion = fig["champion"]
        rows.append({"name": c.name, "policy": c.policy, "figures": fig,
                     "verdict": verdict(fig, rule) if fig else "undecided",
                     "gate": gate(fig, rule) if fig else
                     {"passes": False, "reasons": ["no event evaluated yet"], "bound": None,
                      "needed": None}})
    return {"serving": serving, "champion": champion, "window": loop.evaluation["window"],
            "promotion": rule, "challengers": rows}


def promote(owner, name: str, key: str, reason: str, force: bool = False) -> dict:
    """Promote challenger ``name`` if the gate passes (or ``force``) and its checks pass:
    the new version serves and the champion learns on from it."""
    loop = owner.loop
    if loop.challenger(name) is None:
        shown = ", ".join(c.name for c in loop.challengers) or "none configured"
        raise NotFound(f"loop {loop.name!r} has no challenger {name!r} (challengers: {shown})")
    chs = store_of(owner)
    fig = chs.figures().get(name)
    judged = gate(fig, loop.promotion) if fig else {
        "passes": False, "reasons": ["no event evaluated yet"], "bound": None, "needed": None}
    details = {"challenger": name, "figures": fig, "gate": judged}
    if not judged["passes"] and not force:
        _refuse(owner, f"challenger {name}: gate: {'; '.join(judged['reasons'])}", key, details)
        raise GateRefused(f"challenger {name!r} of loop {loop.name!r} did not pass the gate: "
                          f"{'; '.join(judged['reasons'])}", details)
    blob, spec, last_id = chs.snapshot(name)
    variant = servable(loop).get(spec)
    if blob is None or variant is None:
        raise Conflict(f"challenger {name!r} of loop {loop.name!r} has no saved model for its "
                       "configured policy yet (the learner saves one with its first events)")
    checks = run_checks(blob, variant, owner.store.recent_decisions(MAX_DECISIONS),
                        owner.config.models_check_latency * 1000.0)
    failed = checks.first_failure()
    if failed is not None:
        _refuse(owner, f"challenger {name}: check {failed.name} failed: {failed.message}", key,
                details)
        raise CheckFailed(f"challenger {name!r} of loop {loop.name!r}: the pre-deployment check "
                          f"{failed.name!r} failed: {failed.message}")
    entry = _entry(owner, name, blob, spec, checks, details)
    status, version, previous = chs.promote(name, blob, entry, key, reason, details, force,
                                            owner.config.models_keep, last_id)
    if status == "pinned":
        raise Conflict(f"loop {loop.name!r} is pinned to version {previous}: a promotion "
                       "would end the pin (deploy with learn: true first, or promote with "
                       "force: true)")
    return {"serving": version, "previous": previous, "learning": True, "challenger": name,
            "forced": bool(force and not judged["passes"]), **details}


def _entry(owner, name, blob, spec, checks, details) -> dict:
    try:
        policy = load_policy(blob)
    except BanditError as exc:  # run_checks loaded it a moment ago: only a corrupt store
        raise Conflict(f"challenger {name!r}: its saved model does not load: {exc}") from exc
    learned = getattr(policy, "n_learned", None)
    return {"created": time.time(), "parent": int(owner.registry.serving().get("version", 0)),
            "source": "challenger", "challenger": name,
            "events_learned": learned if isinstance(learned, int) else None,
            "policy": {"name": policy.name, "params": policy.get_params()}, "spec": spec,
            "bytes": len(blob), "checks": checks.to_dict(), "promoted_on": details}


def _refuse(owner, reason: str, key: str, details: dict) -> None:
    owner.registry.refuse(None, key, reason, json.dumps(details))


def auto_candidate(owner) -> str | None:
    """The challenger the learner promotes in ``auto`` mode: of those passing the gate,
    the one with the highest lower bound; None when none passes."""
    rule, figs = owner.loop.promotion, store_of(owner).figures()
    passing = [(gate(f, rule)["bound"], n) for n, f in figs.items()
               if f is not None and gate(f, rule)["passes"]]
    return max(passing)[1] if passing else None
