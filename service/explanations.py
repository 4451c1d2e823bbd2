"""A rank's explanation (``"explain": true``): what the answer's ``explanation`` holds.

For a linear policy (:mod:`bandits.explain`), one entry per returned action, in the
ranking's order: the estimate decomposed into the intercept and the largest feature
and pair contributions, the exploration bonus, the score, and the parts of the
probability; ``drift_floor`` when a drift correction's exploration floor mixed the pmf
with the uniform one ((1 − ε)·pmf + ε/K). For a Vowpal Wabbit policy, VW's own audit
(:mod:`bandits.vw_audit`); for a Q-network, the occlusion attributions of
:mod:`bandits.attribution` (approximate); ``method`` says which. For any other policy the
decision is answered as usual and the explanation says why it has none.
"""
from __future__ import annotations

from bandits import BanditError
from bandits.attribution import occlusion
from bandits.explain import attributes, explain, explains
from bandits.vw_audit import explain_vw


def explanation(policy, context, actions, decision, top: int) -> dict:
    """``{"actions": [...]}`` (request order; :func:`shown_order` orders and trims it),
    or ``{"actions": None, "reason": ...}``: when the policy cannot explain, and when
    explaining fails (the decision stands; only its explanation is missing)."""
    reason = explains(policy)
    method = attributes(policy)
    try:
        if reason is None:
            return {"actions": explain(policy, context, actions, top=top, decision=decision)}
        if method == "audit":
            return {"actions": explain_vw(policy, context, actions, top=top, decision=decision),
                    "method": "Vowpal Wabbit's audit"}
        if method == "occlusion":
            return {"actions": occlusion(policy, context, actions, top=top, decision=decision),
                    "method": "occlusion (approximate)"}
    except (BanditError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        return {"actions": None, "reason": f"the explanation failed: {exc}"}
    return {"actions": None, "reason": reason}


def shown_order(why: dict, indices) -> None:
    """Keep ``why``'s actions at ``indices`` (request positions), in that order."""
    if why.get("actions"):
        why["actions"] = [why["actions"][i] for i in indices]
