"""Shared machinery of the numpy policies: featurize, keep ridge state, learn.

``model="shared"``: one ridge model over the full feature row (context, action,
context x action); it scores candidates it has never seen. ``model="disjoint"``:
one ridge model per action id over the context row (Li et al. 2010's disjoint
LinUCB); for fixed action sets such as UI treatments. An id never learned from
is scored with the prior (θ = 0, A⁻¹ = I/λ).
"""
from __future__ import annotations

import numpy as np

from .base import Policy, chosen_pair
from .errors import FeatureError
from .featurizer import Features, make_featurizer
from .inputs import check_context, check_value
from .params import check_choice, check_int, check_number
from .ridge import RidgeBank
from .types import Decision

SHARED_ARM = "*"


class LinearPolicy(Policy):
    """Base of EpsilonGreedy, LinUCB and LinTS: a ridge reward model per arm or shared.

    Parameters
    ----------
    featurizer : dict or Featurizer
        Featurizer specification (see :class:`bandits.featurizer.Featurizer`).
    model : {"shared", "disjoint"}
        One model for all actions, or one per action id.
    l2 : float
        Ridge penalty λ > 0: A starts at λI.
    window : int
        0 (default) learns from every event. W > 0 learns from the last W events
        only (a sliding window over all actions), so the policy recovers when the
        best action changes; choose W a few times the events it takes to learn.
    """

    def __init__(self, featurizer=None, model="shared", l2=1.0, window=0):
        self.featurizer = make_featurizer(featurizer)
        self.model = check_choice("model", model, ("shared", "disjoint"))
        self.l2 = check_number("l2", l2, 0.0, low_open=True)
        self._shared = model == "shared"
        dim = self.featurizer.dim if self._shared else self.featurizer.context_width
        self.window = check_int("window", window, 0)
        self.bank_ = RidgeBank(dim, self.l2, self.window)
        if self._shared:
            self.bank_.arm(SHARED_ARM)

    def decide(self, context, actions) -> Decision:
        """As :meth:`Policy.decide`; validation happens while featurizing (one pass)."""
        ids, X = self.featurizer.ids_and_rows(context, actions, self._shared)
        scores, pmf = self._score(ids, X)
        return Decision(ids, pmf, scores, self.name)

    # -- array path -------------------------------------------------------------------
    def features(self, context, actions) -> Features:
        """Featurize a request once; pass the result to :meth:`decide_features`."""
        return self.featurizer.transform(context, actions, self._shared)

    def decide_features(self, feats: Features) -> Decision:
        """:meth:`decide` on pre-featurized candidates."""
        scores, pmf = self._score(feats.ids, feats.X)
        return Decision(feats.ids, pmf, scores, self.name)

    def learn_features(self, feats: Features, chosen: int, reward: float) -> None:
        """Learn the reward of ``feats.ids[chosen]`` from its pre-featurized row."""
        if not 0 <= chosen < len(feats.ids):
            raise FeatureError("chosen", f"index {chosen} outside 0..{len(feats.ids) - 1}")
        self._update(feats.ids[chosen], feats.X[chosen], check_value(reward, "reward"))

    # -- hooks ------------------------------------------------------------------------
    def _decide(self, context, pairs):
        return self._score(tuple(aid for aid, _ in pairs), self.featurizer.rows(context, pairs, self._shared))

    def _learn(self, batch):
        """All or nothing: every row is featurized (and so validated) before any update."""
        rows = []
        for i, fb in enumerate(batch):
            aid, feats = chosen_pair(fb, f"feedback[{i}]")
            x = self.featurizer.rows(check_context(fb.context, f"feedback[{i}].context"),
                                     [(aid, feats)], self._shared)[0]
            rows.append((aid, x, fb.reward))
        for aid, x, reward in rows:
            self._update(aid, x, reward)

    def _update(self, action_id, x, reward):
        arm = 0 if self._shared else self.bank_.arm(action_id)
        self.bank_.update(arm, x, reward)

    def _score(self, ids, X) -> tuple:
        """Return ``(scores, pmf)`` for candidate rows X (K, d)."""
        raise NotImplementedError

    @property
    def n_learned(self) -> int:
        """Observations learned so far, over all arms."""
        return int(self.bank_.counts_.sum())

    # -- estimates --------------------------------------------------------------------
    def _params(self, ids):
        """(θ, A⁻¹): shapes (d,), (d, d) for a shared model; (K, d), (K, d, d) per arm."""
        if self._shared:
            return self.bank_.theta_[0], self.bank_.A_inv_[0]
        return self.bank_.gather(self.bank_.lookup(ids))

    def _means(self, ids, X):
        """Ridge estimate θᵀx of each candidate's reward, (K,)."""
        theta, _ = self._params(ids)
        return X @ theta if self._shared else np.einsum("kd,kd->k", X, theta)

    def _means_and_widths(self, ids, X):
        """θᵀx and the confidence width √(xᵀA⁻¹x) of each candidate, both (K,)."""
        theta, A_inv = self._params(ids)
        if self._shared:
            means, XA = X @ theta, X @ A_inv
        else:
            means, XA = np.einsum("kd,kd->k", X, theta), np.matmul(A_inv, X[:, :, None])[:, :, 0]
        squared = np.einsum("kd,kd->k", XA, X)
        return means, np.sqrt(np.maximum(squared, 0.0, out=squared), out=squared)

    # -- snapshot ---------------------------------------------------------------------
    def _get_state(self):
        return {"arm_ids": list(self.bank_.arm_ids_)}, self.bank_.arrays()

    def _set_state(self, state, arrays):
        self.bank_ = RidgeBank.from_arrays(self.bank_.dim, self.l2, state["arm_ids"], arrays,
                                           self.window)
