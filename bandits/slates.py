"""Multi-slot decisions: conditional contextual bandits (CCB), one slot after another.

Each slot is decided in order over the candidates not chosen by an earlier slot (and,
when the slot lists its own, only among those), by the one policy, with the context
joined by the slot's own feature namespaces (its position, its size...). Each slot has
its full pmf; the probability of its choice is conditional on the earlier slots, and
the draw is seeded by the event id and the slot id, so the whole slate is reproducible
from the log. Pure: no I/O.

>>> from bandits import EpsilonGreedy
>>> policy = EpsilonGreedy(epsilon=0.3)
>>> slots = [Slot("top", {"pos": {"i": 1}}), Slot("side", {"pos": {"i": 2}})]
>>> out = decide_slots(policy.decide, {"u": {"x": 1}}, [("a", {}), ("b", {}), ("c", {})],
...                    slots, seed=0, event_id="e1")
>>> [len(s.eligible) for s in out], len({s.action for s in out})
([3, 2], 2)
>>> [round(float(s.decision.pmf.sum()), 12) for s in out]
[1.0, 1.0]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import FeatureError
from .exploration import sample_index
from .types import Decision


@dataclass(frozen=True)
class Slot:
    """One place in the list: ``id``, its feature namespaces, and the candidate ids it
    may show (None: any)."""

    id: str
    features: dict
    actions: frozenset | None = None


@dataclass(frozen=True)
class SlotDecision:
    """A slot's decision: ``eligible`` the candidates' indices (request order) it chose
    among, ``decision`` the policy's pmf over them, ``chosen`` the drawn position in
    ``eligible``."""

    slot: Slot
    eligible: tuple
    decision: Decision
    chosen: int

    @property
    def action(self) -> int:
        """The chosen candidate's index in the request's actions."""
        return self.eligible[self.chosen]

    @property
    def probability(self) -> float:
        """Its probability, conditional on the earlier slots' choices."""
        return float(self.decision.pmf[self.chosen])


def slot_context(context: dict, slot: Slot, field: str = "slots") -> dict:
    """The context a slot is decided in: the request's namespaces and the slot's.

    >>> slot_context({"u": {"x": 1}}, Slot("top", {"pos": {"i": 1}}))
    {'u': {'x': 1}, 'pos': {'i': 1}}
    """
    if not slot.features:
        return context
    clash = next((ns for ns in slot.features if ns in context), None)
    if clash is not None:
        raise FeatureError(f"{field}.features.{clash}", "is also a namespace of the context "
                           "(slot features need their own namespace names)")
    return {**context, **slot.features}


def sample_key(event_id: str, slot_id: str) -> str:
    """What a slot's draw is seeded with, beside the loop's seed."""
    return f"{event_id}/{slot_id}"


def decide_slots(decide: Callable, context: dict, pairs: list, slots: list, *, seed: int,
                 event_id: str) -> list:
    """The :class:`SlotDecision` of every slot, in order.

    ``decide(context, actions)`` is the policy's :meth:`~bandits.Policy.decide` (with any
    exploration floor applied); ``pairs`` the validated ``[(id, features)]``. Raises
    :class:`~bandits.errors.FeatureError` naming ``slots[i]`` when a slot has no
    candidate left.
    """
    used: set = set()
    out = []
    for j, slot in enumerate(slots):
        eligible = tuple(i for i, (aid, _) in enumerate(pairs)
                         if i not in used and (slot.actions is None or aid in slot.actions))
        if not eligible:
            shown = slot.actions is None or any(aid in slot.actions for aid, _ in pairs)
            left = "every candidate it may show went to an earlier slot" if shown else \
                "none of its actions is a candidate"
            raise FeatureError(f"slots[{j}]", f"{slot.id!r} has no action left ({left})")
        ctx = slot_context(context, slot, f"slots[{j}]")
        try:
            decision = decide(ctx, [{"id": pairs[i][0], "features": pairs[i][1]} for i in eligible])
        except FeatureError as exc:  # a slot feature the policy refuses: name it as sent
            ns = exc.field.split(".")[1] if exc.field.startswith("context.") else None
            if ns not in slot.features:
                raise
            raise FeatureError(f"slots[{j}].features" + exc.field[len("context"):],
                               str(exc).partition(": ")[2]) from exc
        chosen = sample_index(decision.pmf, seed, sample_key(event_id, slot.id))
        out.append(SlotDecision(slot, eligible, decision, chosen))
        used.add(eligible[chosen])
    return out
