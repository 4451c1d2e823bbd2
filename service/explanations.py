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

from bandits.attribution import occlusion
from bandits.explain import attributes, explain, explains
from bandits.vw_audit import explain_vw


def explanation(policy, context, actions, decision, top: int) -> dict:
    """``{"actions": [...]}`` (request order; the caller orders and trims it), or
    ``{"actions": None, "reason": ...}``."""
    reason = explains(policy)
    if reason is None:
        return {"actions": explain(policy, context, actions, top=top, decision=decision)}
    method = attributes(policy)
    if method == "audit":
        return {"actions": explain_vw(policy, context, actions, top=top, decision=decision),
                "method": "Vowpal Wabbit's audit"}
    if method == "occlusion":
        return {"actions": occlusion(policy, context, actions, top=top, decision=decision),
                "method": "occlusion (approximate)"}
    return {"actions": None, "reason": reason}
