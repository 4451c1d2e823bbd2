"""One loop as the API serves it: decide, sample, log, then answer; rewards and activation.

No Flask here: the views in :mod:`service.api.routes` only parse and serialize.
"""
from __future__ import annotations

import os
import time
import uuid

import redis

from bandits import BanditError, dsjson, dsjson_slots, sample_index
from bandits.inputs import normalize_actions
from bandits.slates import decide_slots

from .explanations import explanation, shown_order

from .config import Config, LoopConfig
from .drift import raise_floor
from .errors import BadRequest
from .models import ServedModel
from .api.requests import RankRequest
from .store import LoopStore
from .store.registry import Registry
from .store.stats import summary as counters


class LoopService:
    """The decision loop of one configured loop, in one API process."""

    def __init__(self, client: redis.Redis, loop: LoopConfig, config: Config):
        self.loop, self.config = loop, config
        self.store = LoopStore(client, loop)
        self.registry = Registry(client, loop.name, config.models_keep)
        self.model = ServedModel(self.store, loop, self.registry)
        self._fixed_ids = frozenset(a["id"] for a in loop.actions or ())
        self._vw_actions: dict = {}  # actions' logged form, by id (bandits.dsjson)

    def rank(self, req: RankRequest, started: float) -> dict:
        """Choose, log (before answering) and return the response body.

        ``started`` is the ``time.perf_counter()`` at which the request arrived; the
        latency recorded in the metrics runs from there to the log write.
        """
        actions = req.actions if req.actions is not None else self.loop.actions
        if actions is None:
            raise BadRequest(f"actions: required (loop {self.loop.name!r} has no fixed actions)")
        pairs = req.pairs
        if pairs is None:
            try:
                pairs = normalize_actions(actions)
            except BanditError as exc:
                raise BadRequest(str(exc)) from exc
        if req.actions is not None and self.loop.actions:
            self._check_fixed(pairs)
        if req.exclude:
            pairs = [(aid, f) for aid, f in pairs if aid not in req.exclude]
            if not pairs:
                raise BadRequest("exclude: every action is excluded")
            actions = [{"id": aid, "features": feats} for aid, feats in pairs]
        context, state = req.context, None
        if self.loop.sequential:
            if req.session_id is None:
                raise BadRequest(f"session_id: required (loop {self.loop.name!r} is sequential)")
            state = self.store.session(req.session_id)
            context = state.as_context(context)
        elif req.session_id is not None:
            raise BadRequest(f"session_id: loop {self.loop.name!r} is not sequential "
                             "(it has no session table)")
        slots = req.slots if req.slots is not None else self.loop.slots
        if slots:
            if state is not None:
                raise BadRequest(f"slots: loop {self.loop.name!r} is sequential (one action per step)")
            return self._rank_slots(req, started, context, pairs, slots)
        policy, version = self.model.current()
        why = None
        try:
            with self.model.lock:
                by_pairs = getattr(policy, "decide_pairs", None)  # a plugin may have decide only
                decision = (by_pairs(context, pairs) if by_pairs is not None  # validated above
                            else policy.decide(context, actions))
                if req.explain:
                    why = explanation(policy, context, actions, decision, req.explain)
        except BanditError as exc:
            raise BadRequest(str(exc)) from exc
        floor = self.model.floor()  # a drift correction's exploration floor, if any
        if floor:
            floored = raise_floor(decision, floor)
            if why and why.get("actions") and floored is not decision:
                why["drift_floor"] = floor
            decision = floored
        event_id = req.event_id or uuid.uuid4().hex
        chosen = sample_index(decision.pmf, self.loop.seed, event_id)
        order = _order(decision, chosen)
        if why is not None:  # in the answer's order, settled before the decision is logged
            shown_order(why, order[:req.k] if req.k else order)
        event = dsjson.decision_event(
            loop=self.loop.name, event_id=event_id, epoch_s=time.time(), context=context,
            actions=pairs, order=order, pmf=decision.pmf, policy=decision.policy,
            version=version, deferred=req.defer, session=state,
            memo=self._vw_actions)
        self.store.log_decision(event_id, dsjson.dumps(event), req.defer,
                                time.perf_counter() - started, state, version=version,
                                action=pairs[chosen][0], propensity=decision.pmf[chosen],
                                explored=bool(decision.pmf[chosen] < decision.pmf.max()))
        body = self._answer(event_id, pairs, decision, order, None, req, version)
        if why is not None:
            body["explanation"] = why
        if state is not None:
            body["session"] = {"id": state.session_id, "step": state.step}
        return body

    def _rank_slots(self, req: RankRequest, started: float, context: dict, pairs: list, slots) -> dict:
        """A multi-slot decision (:mod:`bandits.slates`): each slot in order, logged as
        one CCB event; the top-level fields describe the first slot."""
        if len(slots) > len(pairs):
            raise BadRequest(f"slots: {len(slots)} slots for {len(pairs)} candidate actions; each "
                             "slot shows a different action")
        policy, version = self.model.current()
        floor = self.model.floor()

        whys = []

        def decide(ctx, acts):
            decision = policy.decide(ctx, acts)
            if req.explain:
                whys.append(explanation(policy, ctx, acts, decision, req.explain))
            floored = raise_floor(decision, floor) if floor else decision
            if req.explain and floored is not decision and whys[-1].get("actions"):
                whys[-1]["drift_floor"] = floor
            return floored

        event_id = req.event_id or uuid.uuid4().hex
        try:
            with self.model.lock:
                chosen = decide_slots(decide, context, pairs, list(slots), seed=self.loop.seed,
                                      event_id=event_id)
        except BanditError as exc:
            raise BadRequest(str(exc)) from exc
        for sd, why in zip(chosen, whys):  # the slot's chosen action, then its ranking's
            order = _order(sd.decision, sd.chosen)
            shown_order(why, order[:req.k] if req.k else order[:1])
        first = chosen[0]
        event = dsjson_slots.slots_event(
            loop=self.loop.name, event_id=event_id, epoch_s=time.time(), context=context,
            actions=pairs, slates=chosen, policy=first.decision.policy, version=version,
            deferred=req.defer, memo=self._vw_actions)
        self.store.log_decision(event_id, dsjson.dumps(event), req.defer,
                                time.perf_counter() - started, version=version,
                                action=pairs[first.action][0], propensity=first.probability,
                                explored=bool(first.probability < first.decision.pmf.max()),
                                slots=tuple(sd.slot.id for sd in chosen))
        body = self._answer(event_id, pairs, first.decision, _order(first.decision, first.chosen),
                            first.eligible, req, version)
        body["slots"] = [{"id": sd.slot.id, "chosen": pairs[sd.action][0], "probability": sd.probability,
                          **({"ranking": self._ranking(pairs, sd.decision, _order(sd.decision, sd.chosen)[:req.k],
                                                       sd.eligible)} if req.k else {})} for sd in chosen]
        for item, why in zip(body["slots"], whys):
            item["explanation"] = why
        return body

    def _answer(self, event_id, pairs, decision, order, eligible, req, version) -> dict:
        """The response body of a decision (``order``: its indices, the chosen first) over
        ``eligible`` (indices into ``pairs``; None: all of them)."""
        return {"event_id": event_id, "chosen": pairs[order[0] if eligible is None else eligible[order[0]]][0],
                "probability": float(decision.pmf[order[0]]),
                "ranking": self._ranking(pairs, decision, order[:req.k] if req.k else order, eligible),
                "model": {"policy": decision.policy, "version": version},
                "deferred": req.defer}

    @staticmethod
    def _ranking(pairs, decision, shown, eligible=None) -> list:
        pmf, scores = decision.pmf, decision.scores
        return [{"id": pairs[i if eligible is None else eligible[i]][0], "probability": float(pmf[i]),
                 "score": float(scores[i])} for i in shown]

    def _check_fixed(self, pairs) -> None:
        """A loop with fixed actions takes only those ids (with request features, if
        sent): a per-action model would otherwise grow a model for every new id."""
        known = self._fixed_ids
        for i, (aid, _) in enumerate(pairs):
            if aid not in known:
                shown = aid if len(aid) <= 64 else aid[:64] + "..."
                listed = sorted(known)
                more = f", ... {len(listed)} in all" if len(listed) > 10 else ""
                raise BadRequest(f"actions[{i}].id: {shown!r} is not an action of loop "
                                 f"{self.loop.name!r} (its actions: {', '.join(listed[:10])}{more})")

    def summary(self) -> dict:
        """Configuration, model version and counters (``GET /v1/loops/<loop>``).

        ``model`` is the learner's head (the version it publishes from);
        ``serving_version`` the serving pointer and ``learning`` whether the learner
        learns for the loop (false: pinned); ``served`` the version this worker
        (process id ``worker``) serves, refreshed as a rank would refresh it.
        """
        meta, pointer = self.store.model_meta(), self.registry.serving()
        stats = self.store.stats()
        _, served = self.model.current()
        return {**self.loop.summary(),
                "model": {"version": int(meta.get("version", 0)), "policy": meta.get("policy"),
                          "created": float(meta["created"]) if "created" in meta else None},
                "serving_version": int(pointer.get("version", 0)),
                "learning": pointer.get("learn") != "0",
                "served": {"version": served, "worker": os.getpid()},
                "counters": counters(stats)}


def _order(decision, chosen: int) -> list:
    """The decision's action indices as answered and logged: the chosen one first, then
    by score."""
    return [chosen] + [i for i in decision.ranking() if i != chosen]
