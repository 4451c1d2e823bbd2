"""Feature hashing: contexts and candidate actions to float64 vectors of a fixed width.

Layout of one row for a *shared* model (one weight vector scores every action)::

    [ 1 | context dense | context hashed | action dense | action hashed | interactions ]
      ^intercept (optional)                                              ^context x action

A *disjoint* model (one weight vector per action id) uses only the context part
``[1 | context dense | context hashed]``.

Each side is hashed by :class:`bandits.hashing.HashedSide` (keyed blake2b, stable in
every process, signed buckets). Interactions are the count sketch of the outer product context ⊗ action,
computed as a circular convolution of the two sides' sketches (Tensor Sketch, Pham &
Pagh 2013): pair (i, j) lands in slot (h(i) + h(j)) mod D with sign s(i)·s(j). That
makes every context feature interact with every action feature, including the
action id, at the price of one small matrix product per request.

Examples
--------
>>> f = Featurizer(context_dim=8, action_dim=4, interaction_dim=8)
>>> feats = f.transform({"user": {"country": "FR", "age": 31}}, ["a", "b"])
>>> feats.X.shape, f.dim
((2, 21), 21)
>>> bool((feats.X == f.transform({"user": {"age": 31, "country": "FR"}}, ["a", "b"]).X).all())
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError
from .hashing import HashedSide
from .inputs import check_context, normalize_actions
from .params import check_bool, check_int, check_lengths

@dataclass(frozen=True)
class Features:
    """Featurized candidates: ``X[k]`` is the row of action ``ids[k]``; X has shape (K, d)."""

    ids: tuple
    X: np.ndarray


class Featurizer:
    """Turns (context, actions) into a (K, d) float64 matrix by stable feature hashing.

    Parameters
    ----------
    context_dim : int
        Hashed buckets for context features. Choose about 2-4x the number of distinct
        context features that are active in one request; numpy policies keep d x d
        matrices, so d = 1 + context_dim + action_dim + interaction_dim (+ dense
        lengths) should stay in the low hundreds.
    action_dim : int
        Hashed buckets for action features (the action id is one of them when
        ``action_id`` is true).
    interaction_dim : int
        Slots of the context x action sketch; 0 disables interactions. Without
        interactions a shared model ranks actions identically for every context.
    intercept : bool
        Prepend a constant 1 column.
    action_id : bool
        Hash each action's id as a categorical action feature, so a shared model can
        learn per-action values (and, through interactions, per-action context effects).
    context_dense, action_dense : dict of str -> int
        Embeddings kept in position, not hashed: ``{"user.embedding": 16}`` reserves 16
        columns for the list of numbers at ``context["user"]["embedding"]``.
    hash_seed : int
        Key of the hash; changing it re-maps every feature.
    """

    def __init__(self, context_dim=32, action_dim=16, interaction_dim=32, intercept=True,
                 action_id=True, context_dense=None, action_dense=None, hash_seed=0):
        self.context_dim = check_int("context_dim", context_dim, 1)
        self.action_dim = check_int("action_dim", action_dim, 1)
        self.interaction_dim = check_int("interaction_dim", interaction_dim, 0)
        self.intercept = check_bool("intercept", intercept)
        self.action_id = check_bool("action_id", action_id)
        self.context_dense = check_lengths("context_dense", context_dense)
        self.action_dense = check_lengths("action_dense", action_dense)
        self.hash_seed = check_int("hash_seed", hash_seed, 0)
        key = self.hash_seed.to_bytes(8, "little")
        self._ctx = HashedSide("context", self.context_dim, self.context_dense, self.interaction_dim, key)
        lead = [1.0] * self.intercept + [0.0] * self._ctx.width  # the context's columns
        self._act = HashedSide("action", self.action_dim, self.action_dense, self.interaction_dim, key, lead)
        s = self.interaction_dim
        self._circulant = (np.arange(s)[None, :] - np.arange(s)[:, None]) % s if s else None

    def get_config(self) -> dict:
        """Constructor arguments as a JSON-ready dict; ``Featurizer(**cfg)`` rebuilds it."""
        return {"context_dim": self.context_dim, "action_dim": self.action_dim,
                "interaction_dim": self.interaction_dim, "intercept": self.intercept,
                "action_id": self.action_id, "context_dense": dict(self.context_dense),
                "action_dense": dict(self.action_dense), "hash_seed": self.hash_seed}

    @property
    def context_width(self) -> int:
        """Width of a disjoint model's row: intercept + context dense + context hashed."""
        return int(self.intercept) + self._ctx.width

    @property
    def dim(self) -> int:
        """Width of a shared model's row."""
        return self.context_width + self._act.width + self.interaction_dim

    def context_vector(self, context: Any) -> np.ndarray:
        """The (context_width,) vector of a context alone, for per-action models."""
        x = self._ctx.entry(check_context(context), "context")[:self._ctx.width]
        return np.concatenate(([1.0], x)) if self.intercept else x.copy()

    def transform(self, context: Any, actions: Any, shared: bool = True) -> Features:
        """Featurize every candidate; ``shared=False`` gives the context-only rows of a
        per-action (disjoint) model."""
        return Features(*self.ids_and_rows(context, actions, shared))

    def ids_and_rows(self, context: Any, actions: Any, shared: bool = True) -> tuple:
        """``(ids, X)`` of :meth:`transform`, without the :class:`Features` record."""
        context = check_context(context)
        if not shared:
            ids = tuple(aid for aid, _ in normalize_actions(actions))
            x = self.context_vector(context)
            return ids, np.broadcast_to(x, (len(ids), x.size))
        ids, rows = self._act.block_rows(actions, self.action_id)
        return ids, self._assemble(context, rows)

    def rows(self, context: dict, pairs: list, shared: bool = True) -> np.ndarray:
        """The (K, d) matrix for an already validated context and ``[(id, features)]``."""
        if not shared:
            x = self.context_vector(context)
            return np.broadcast_to(x, (len(pairs), x.size))
        return self._assemble(context, self._act.action_rows(pairs, self.action_id))

    def _assemble(self, context, rows):
        """Shared-model rows from the context and the memoised action rows ``rows``.

        Memoised rows are stored as ``[intercept | 0 | action | sketch]``, the row layout
        with the sketch where the interactions go: one ``take`` gives the block, then
        the context is written in and the sketch replaced by its product with the
        context's circulant (fewer small numpy calls than assembling part by part).
        """
        ctx, c0 = self._ctx, self.context_width
        c = ctx.entry(context, "context")
        X = self._act.rows.take(rows, 0)
        X[:, int(self.intercept):c0] = c[:ctx.width]
        if self.interaction_dim:
            S = X[:, c0 + self._act.width:]
            np.matmul(S, c[ctx.width:].take(self._circulant), out=S)
        return X


def make_featurizer(spec: Mapping | Featurizer | None) -> Featurizer:
    """Build a Featurizer from a mapping; unknown keys raise naming the allowed ones."""
    if isinstance(spec, Featurizer):
        return spec
    spec = dict(spec or {})
    allowed = list(Featurizer().get_config())
    for key in spec:
        if key not in allowed:
            raise ConfigError(f"featurizer.{key}", "unknown key", allowed)
    try:
        return Featurizer(**spec)
    except ConfigError as exc:
        raise ConfigError(f"featurizer.{exc.key}", exc.message, exc.allowed) from exc
