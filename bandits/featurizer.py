"""Feature hashing: contexts and candidate actions to float64 vectors of a fixed width.

Layout of one row for a *shared* model (one weight vector scores every action)::

    [ 1 | context dense | context hashed | action dense | action hashed | interactions ]
      ^intercept (optional)                                              ^context x action

A *disjoint* model (one weight vector per action id) uses only the context part
``[1 | context dense | context hashed]``.

Hashing is keyed blake2b over ``side, namespace, name[, value]``: stable across
processes and Python versions (never the salted builtin ``hash``). Each feature
gets a bucket and a sign (signed hashing, Weinberger et al. 2009, keeps collisions
unbiased). Interactions are the count sketch of the outer product context ⊗ action,
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

import copy
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError, FeatureError
from .params import check_bool, check_int, check_lengths
from .inputs import (NUMBER, NUMBERS, SKIP, STRING, STRINGS, check_context, classify,
                     feature_field, iter_namespaces, normalize_actions)

#: Hashed feature keys memoised per side before the memo is cleared.
CACHE_LIMIT = 100_000
#: Featurized actions memoised by id (about 1.5 kB each with the default dimensions).
ACTION_CACHE_LIMIT = 20_000
#: Context namespace layouts (feature-name tuples) memoised, and string-only
#: namespaces memoised by content.
LAYOUT_CACHE_LIMIT = 1_024
CONTENT_CACHE_LIMIT = 16_384
_STRINGS, _MIXED = "strings", "mixed"
_BIG = 1e300
_SCALARS = (float, int, str)


@dataclass(frozen=True)
class Features:
    """Featurized candidates: ``X[k]`` is the row of action ``ids[k]``; X has shape (K, d)."""

    ids: tuple
    X: np.ndarray


class _Side:
    """Hashing of one side (context or action) into ``[dense blocks | hashed buckets]``.

    Each distinct feature key is hashed once into its slot (index in the side vector,
    sign, sketch slot, sketch sign); slots are memoised up to :data:`CACHE_LIMIT` keys.
    """

    def __init__(self, name, dim, dense, sketch_dim, key):
        self.name, self.dim, self.sketch_dim, self._key = name, dim, sketch_dim, key
        self.dense, offset = {}, 0
        for dkey, length in dense.items():
            self.dense[dkey] = (offset, length)
            offset += length
        self.width = offset + dim
        self._dense_names = {dkey.rsplit(".", 1)[-1] for dkey in dense}
        self._slots: dict = {}
        self._layouts: dict = {}
        self._contents: dict = {}
        self._by_id: dict = {}

    def _slot(self, *parts) -> tuple:
        """(index in side vector, sign, sketch slot, sketch sign) of one hashed feature."""
        slot = self._slots.get(parts)
        if slot is None:
            text = "\x1f".join((self.name,) + parts).encode("utf-8", "surrogatepass")
            digest = hashlib.blake2b(text, digest_size=16, key=self._key).digest()
            h1 = int.from_bytes(digest[:8], "little")
            h2 = int.from_bytes(digest[8:], "little")
            slot = (self.width - self.dim + (h1 >> 1) % self.dim, 1.0 - 2.0 * (h1 & 1),
                    (h2 >> 1) % max(self.sketch_dim, 1), 1.0 - 2.0 * (h2 & 1))
            if len(self._slots) >= CACHE_LIMIT:
                self._slots.clear()
            self._slots[parts] = slot
        return slot

    def entry(self, obj: dict, field) -> np.ndarray:
        """Vector ``[side vector | sketch]`` of a context, namespace by namespace.

        A namespace of only numbers is computed as ``values @ M`` with M memoised per
        (namespace, feature names): one small product instead of a Python loop. A
        namespace of only strings is memoised on its content (categorical values
        repeat). Anything else, and every first sight, goes through :meth:`_build`.
        """
        total, rest = None, {}
        for ns, feats in iter_namespaces(obj, field):
            vec = self._memo_namespace(ns, feats) if len(feats) >= 4 else None
            if vec is None:
                rest[ns] = feats
            elif total is None:
                total = vec.copy()
            else:
                total += vec
        if rest or total is None:
            built = self._build(rest, field, None)
            return built if total is None else total + built
        return total

    def _memo_namespace(self, ns, feats):
        names = tuple(feats)
        layout = self._layouts.get((ns, names))
        if layout is None:
            layout = self._layout(ns, feats)
            if len(self._layouts) >= LAYOUT_CACHE_LIMIT:
                self._layouts.clear()
            self._layouts[(ns, names)] = layout
        if layout is _STRINGS:
            key = (ns, tuple(feats.values()), names)
            vec = self._contents.get(key)
            if vec is None:
                vec = self._build({ns: feats}, "context", None)
                if len(self._contents) >= CONTENT_CACHE_LIMIT:
                    self._contents.clear()
                self._contents[key] = vec
            return vec
        if layout is _MIXED:
            return None
        try:
            values = np.fromiter(feats.values(), np.float64, len(names))
        except (TypeError, ValueError, OverflowError):
            return None
        # NaN/inf (or overflow) shows in vᵀv: leave those to the path that reports them
        return values @ layout if math.isfinite(values @ values) else None

    def _layout(self, ns, feats):
        """M (n_features, width + sketch) for an all-number namespace, else a marker."""
        kinds = {type(v) for v in feats.values()}
        if all(isinstance(n, str) and n.split(".")[-1] not in self._dense_names for n in feats):
            if kinds == {str}:
                return _STRINGS
            if kinds <= {int, float, bool}:
                M = np.zeros((len(feats), self.width + self.sketch_dim))
                for row, name in enumerate(feats):
                    if not name.startswith("_"):
                        i, s, j, t = self._slot(ns, name)
                        M[row, i] += s
                        M[row, self.width + j] += t
                return M
        return _MIXED

    def action_block(self, actions, with_id: bool) -> tuple:
        """``(ids, A)``: validated ids and the (K, width + sketch) action vectors.

        Fast path: every action is memoised with equal features, so the memo hit is
        the validation (only valid actions are ever stored); else the validating path.
        """
        memo, ids, vecs = self._by_id, [], []
        if type(actions) is list:
            for action in actions:
                kind = type(action)
                if kind is dict:
                    aid, feats = action.get("id"), action.get("features")
                elif kind is str:
                    aid, feats = action, None
                else:
                    break
                hit = memo.get(aid) if type(aid) is str else None
                if hit is None or hit[0] != (feats if feats is not None else {}):
                    break
                ids.append(aid)
                vecs.append(hit[1])
            else:
                if vecs and len(set(ids)) == len(ids):
                    return tuple(ids), np.array(vecs)
        pairs = normalize_actions(actions)
        return (tuple(aid for aid, _ in pairs),
                np.array([self.action_entry(aid, f, i, with_id) for i, (aid, f) in enumerate(pairs)]))

    def action_entry(self, action_id: str, feats: dict, index: int, with_id: bool) -> np.ndarray:
        """Like :meth:`entry` for an action, memoised by id and checked by dict equality.

        Comparing the stored features with ``==`` is cheaper than hashing their content
        and also works for actions holding lists.
        """
        hit = self._by_id.get(action_id)
        if hit is not None and hit[0] == feats:
            return hit[1]
        vec = self._build(feats, index, action_id if with_id else None)
        if len(self._by_id) >= ACTION_CACHE_LIMIT:
            self._by_id.clear()
        self._by_id[action_id] = (copy.deepcopy(feats), vec)
        return vec

    def _build(self, obj, field, action_id):
        """``[side vector | sketch]`` of one object. Accumulates in a Python list: for the
        tens of features of one object that beats a chain of small numpy calls."""
        if isinstance(field, int):
            field = f"actions[{field}].features"
        width = self.width
        acc = [0.0] * (width + max(self.sketch_dim, 1))  # slot 0 takes the sketch when it is off
        memo, slot_of, dense_names = self._slots, self._slot, self._dense_names
        for ns, feats in iter_namespaces(obj, field):
            for name, value in feats.items():
                kind = type(value)  # fast path: plain numbers and strings
                if kind in _SCALARS and type(name) is str and name[:1] != "_" and name not in dense_names:
                    if kind is str:
                        value, slot = 1.0, memo.get((ns, name, value)) or slot_of(ns, name, value)
                    elif value - value == 0 and -_BIG < value < _BIG:  # finite, fits a float
                        if not value:
                            continue
                        slot = memo.get((ns, name)) or slot_of(ns, name)
                    else:
                        raise FeatureError(feature_field(field, ns, name),
                                           f"must be a finite number, got {value!r}")
                    i, s, j, t = slot
                    acc[i] += s * value
                    acc[width + j] += t * value
                    continue
                if not isinstance(name, str):
                    raise FeatureError(f"{field}.{ns}", f"feature names must be strings, got {name!r}")
                if not name.startswith("_"):
                    self._feature(ns, name, value, feature_field(field, ns, name), acc)
        if action_id is not None:
            i, s, j, t = self._slot("_id", action_id)
            acc[i] += s
            acc[width + j] += t
        vec = np.array(acc[:width + self.sketch_dim])
        vec.flags.writeable = False
        return vec

    def _feature(self, ns, name, value, field, acc):
        """General path: validates the value, handles bags and embeddings."""
        kind = classify(value, field)
        dkey = f"{ns}.{name}" if ns else name
        if kind == NUMBERS or dkey in self.dense:
            self._dense(dkey, value, kind, field, acc)
            return
        if kind == NUMBER:
            pairs = [((ns, name), float(value))] if value else []
        elif kind == STRING:
            pairs = [((ns, name, value), 1.0)]
        elif kind == STRINGS:
            pairs = [((ns, name, item), 1.0) for item in value]
        else:
            assert kind == SKIP
            pairs = []
        for parts, v in pairs:
            i, s, j, t = self._slot(*parts)
            acc[i] += s * v
            acc[self.width + j] += t * v

    def _dense(self, dkey, value, kind, field, acc):
        """Embedding entries: kept at fixed positions, hashed only into the sketch."""
        if dkey not in self.dense:
            raise FeatureError(field, f"list of numbers is an embedding: declare its length "
                                      f"in the featurizer's {self.name}_dense as '{dkey}'")
        offset, length = self.dense[dkey]
        if kind != NUMBERS or len(value) != length:
            raise FeatureError(field, f"must be a list of {length} numbers (declared in {self.name}_dense)")
        for i, v in enumerate(value):
            _, _, j, t = self._slot("_dense", dkey, str(i))
            acc[offset + i] += float(v)
            acc[self.width + j] += t * float(v)


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
        self._ctx = _Side("context", self.context_dim, self.context_dense, self.interaction_dim, key)
        self._act = _Side("action", self.action_dim, self.action_dense, self.interaction_dim, key)
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
        context = check_context(context)
        if not shared:
            ids = tuple(aid for aid, _ in normalize_actions(actions))
            x = self.context_vector(context)
            return Features(ids, np.broadcast_to(x, (len(ids), x.size)))
        ids, A = self._act.action_block(actions, self.action_id)
        return Features(ids, self._assemble(context, A))

    def rows(self, context: dict, pairs: list, shared: bool = True) -> np.ndarray:
        """The (K, d) matrix for an already validated context and ``[(id, features)]``."""
        if not shared:
            x = self.context_vector(context)
            return np.broadcast_to(x, (len(pairs), x.size))
        act, with_id = self._act, self.action_id
        A = np.array([act.action_entry(aid, f, i, with_id) for i, (aid, f) in enumerate(pairs)])
        return self._assemble(context, A)

    def _assemble(self, context, A):
        """Shared-model rows from the context and the (K, width + sketch) action vectors."""
        ctx, act, c0 = self._ctx, self._act, self.context_width
        c = ctx.entry(context, "context")
        X = np.empty((len(A), self.dim))
        if self.intercept:
            X[:, 0] = 1.0
        X[:, int(self.intercept):c0] = c[:ctx.width]
        X[:, c0:c0 + act.width] = A[:, :act.width]
        if self.interaction_dim:
            X[:, c0 + act.width:] = A[:, act.width:] @ c[ctx.width:][self._circulant]
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
