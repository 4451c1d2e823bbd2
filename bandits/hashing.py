"""Hashing of one side of a request (context or action) into a fixed-width vector.

A side vector is ``[dense blocks | hashed buckets]`` followed by the side's count
sketch (``sketch_dim`` slots) that the featurizer convolves into interactions.
Hashing is keyed blake2b over ``side, namespace, name[, value]``: stable in every
process (never the salted builtin ``hash``), with a sign per feature (signed
hashing, Weinberger et al. 2009, keeps collisions unbiased). Every memo here is
bounded; see the ``*_LIMIT`` constants.
"""
from __future__ import annotations

import copy
import hashlib
from operator import itemgetter

import numpy as np

from .errors import FeatureError
from .inputs import (MAX_ABS_VALUE, NUMBER, NUMBERS, SKIP, STRING, STRINGS, classify,
                     feature_field, iter_namespaces, normalize_actions, number_message)

#: Hashed feature keys memoised per side before the memo is cleared.
CACHE_LIMIT = 100_000
#: Featurized actions memoised by id (about 1.5 kB each with the default dimensions).
ACTION_CACHE_LIMIT = 20_000
#: Context namespace layouts (feature-name tuples) memoised, and string-only
#: namespaces memoised by content.
LAYOUT_CACHE_LIMIT = 256
#: Namespaces from 4 to this many features use the layout memo (bounds each M).
LAYOUT_MAX_FEATURES = 256
CONTENT_CACHE_LIMIT = 16_384
_STRINGS, _MIXED = "strings", "mixed"
_BIG = MAX_ABS_VALUE
_BIG_SQUARED = MAX_ABS_VALUE ** 2
_SCALARS = (float, int, str)
_NUMBERS = frozenset((float, int, bool))
_FIRST, _SECOND = itemgetter(0), itemgetter(1)


class HashedSide:
    """Hashing of one side (context or action) into ``[dense blocks | hashed buckets]``.

    Each distinct feature key is hashed once into its slot (index in the side vector,
    sign, sketch slot, sketch sign); slots are memoised up to :data:`CACHE_LIMIT` keys.
    """

    def __init__(self, name, dim, dense, sketch_dim, key, lead=()):
        self.name, self.dim, self.sketch_dim, self._key = name, dim, sketch_dim, key
        self._lead = np.array(lead, dtype=np.float64)
        self.dense, offset = {}, 0
        for dkey, length in dense.items():
            self.dense[dkey] = (offset, length)
            offset += length
        self.width = offset + dim
        self._dense_names = {dkey.rsplit(".", 1)[-1] for dkey in dense}
        self._slots: dict = {}
        self._layouts: dict = {}
        self._contents: dict = {}
        self._by_id: dict = {}  # action id -> (features, row of self._rows)
        self._rows = np.empty((0, self._lead.size + self.width + sketch_dim))

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
        """Vector ``[side vector | sketch]`` of a context, namespace by namespace; do
        not write into it (it may be a memoised vector).

        A namespace of only numbers is computed as ``values @ M`` with M memoised per
        (namespace, feature names): one small product instead of a Python loop. A
        namespace of only strings is memoised on its content (categorical values
        repeat). Anything else, and every first sight, goes through :meth:`_build`.
        """
        vecs, rest = [], []
        for ns, feats in iter_namespaces(obj, field):
            vec = self._memo_namespace(ns, feats) if 4 <= len(feats) <= LAYOUT_MAX_FEATURES else None
            if vec is None:
                rest.append((ns, feats))
            else:
                vecs.append(vec)
        if rest or not vecs:
            vecs.append(self._build(rest, field, None))
        if len(vecs) == 1:
            return vecs[0]  # possibly a memo entry: read-only
        total = vecs[0] + vecs[1]
        for vec in vecs[2:]:
            total += vec
        return total

    def _memo_namespace(self, ns, feats):
        names = tuple(feats)
        layout = self._layouts.get((ns, names))
        if layout is None:
            layout = self._layout(ns, feats)
            if len(self._layouts) >= LAYOUT_CACHE_LIMIT:
                self._layouts.clear()
            self._layouts[(ns, names)] = layout
        values = feats.values()
        if layout is _STRINGS:
            key = (ns, tuple(values), names)
            try:
                vec = self._contents.get(key)
            except TypeError:  # a list where strings were seen before
                return None
            if vec is None:
                vec = self._build([(ns, feats)], "context", None)
                if len(self._contents) >= CONTENT_CACHE_LIMIT:
                    self._contents.clear()
                self._contents[shared_copy(key)] = vec
            return vec
        if layout is _MIXED or not set(map(type, values)) <= _NUMBERS:  # "3.5" is categorical
            return None
        try:
            x = np.fromiter(values, np.float64, len(names))
        except OverflowError:
            return None
        # NaN, inf or a value past ±MAX_ABS_VALUE shows in xᵀx (NaN compares false):
        # leave those to the path that reports them
        return x @ layout if x @ x <= _BIG_SQUARED else None

    def _layout(self, ns, feats):
        """M (n_features, width + sketch) for an all-number namespace, else a marker."""
        kinds = {type(v) for v in feats.values()}
        if all(isinstance(n, str) and n.split(".")[-1] not in self._dense_names for n in feats):
            if kinds == {str}:
                return _STRINGS
            if kinds <= _NUMBERS:
                M = np.zeros((len(feats), self.width + self.sketch_dim))
                for row, name in enumerate(feats):
                    if not name.startswith("_"):
                        i, s, j, t = self._slot(ns, name)
                        M[row, i] += s
                        if self.sketch_dim:
                            M[row, self.width + j] += t
                return M
        return _MIXED

    def block_rows(self, actions, with_id: bool) -> tuple:
        """``(ids, rows)``: validated ids and the rows of :attr:`rows` holding their vectors.

        Fast path: every action is memoised with equal features, so the memo hit is
        the validation (only valid actions are ever stored under their string id);
        anything else, including a missing ``features`` key, takes the validating path.
        """
        if type(actions) is list and actions:
            hit = self._memo_block(actions)
            if hit is not None:
                return hit
        pairs = normalize_actions(actions)
        return tuple(aid for aid, _ in pairs), self.action_rows(pairs, with_id)

    @property
    def rows(self) -> np.ndarray:
        """The memoised action vectors, one per row after the ``lead`` constants (so a
        featurizer takes a request's block in its row layout); read before the next request."""
        return self._rows

    def _memo_block(self, actions):
        """``(ids, rows)`` when every action is memoised with equal features, else None."""
        hit = memo_hits(self._by_id, actions)
        return None if hit is None else (hit[0], list(map(_SECOND, hit[1])))

    def action_vectors(self, pairs: list, with_id: bool) -> np.ndarray:
        """(K, width + sketch) vectors of validated ``[(id, features)]`` pairs."""
        rows = self.action_rows(pairs, with_id)  # may grow self._rows: read it after
        return self._rows.take(rows, 0)[:, self._lead.size:]

    def action_rows(self, pairs: list, with_id: bool) -> list:
        """Rows of :attr:`rows` holding the vectors of validated ``[(id, features)]`` pairs
        (one lookup and one ``==`` over the list when every pair is memoised as is)."""
        try:
            entries = tuple(map(self._by_id.__getitem__, [aid for aid, _ in pairs]))
            if tuple(map(_FIRST, entries)) == tuple([feats for _, feats in pairs]):
                return list(map(_SECOND, entries))
        except KeyError:
            pass
        if len(self._by_id) + len(pairs) > ACTION_CACHE_LIMIT:
            self._by_id.clear()  # only between requests: rows already taken stay valid
        return [self.action_entry(aid, f, i, with_id) for i, (aid, f) in enumerate(pairs)]

    def action_entry(self, action_id: str, feats: dict, index: int, with_id: bool) -> int:
        """Row of ``self._rows`` holding the action's vector (like :meth:`entry`),
        memoised by id and checked by dict equality.

        Comparing the stored features with ``==`` is cheaper than hashing their content
        and also works for actions holding lists. Rows live in one array so a request's
        block is one ``take``.
        """
        hit = self._by_id.get(action_id)
        if hit is not None and hit[0] == feats:
            return hit[1]
        vec = self._build(iter_namespaces(feats, f"actions[{index}].features"), index,
                          action_id if with_id else None)
        if hit is not None:
            row = hit[1]
        else:
            row = len(self._by_id)
            if row == len(self._rows):
                grown = np.empty((max(64, 2 * row), self._rows.shape[1]))
                grown[:row] = self._rows
                self._rows = grown
        self._rows[row, :self._lead.size] = self._lead
        self._rows[row, self._lead.size:] = vec
        self._by_id[action_id] = (shared_copy(feats), row)
        return row

    def _build(self, namespaces, field, action_id):
        """``[side vector | sketch]`` of one object. Accumulates in a Python list: for the
        tens of features of one object that beats a chain of small numpy calls."""
        if isinstance(field, int):
            field = f"actions[{field}].features"
        width = self.width
        acc = [0.0] * (width + max(self.sketch_dim, 1))  # slot 0 takes the sketch when it is off
        memo, slot_of, dense_names = self._slots, self._slot, self._dense_names
        for ns, feats in namespaces:
            for name, value in feats.items():
                kind = type(value)  # fast path: plain numbers and strings
                if kind in _SCALARS and type(name) is str and name[:1] != "_" and name not in dense_names:
                    if kind is str:
                        value, slot = 1.0, memo.get((ns, name, value)) or slot_of(ns, name, value)
                    elif value - value == 0 and -_BIG <= value <= _BIG:  # finite, bounded
                        if not value:
                            continue
                        slot = memo.get((ns, name)) or slot_of(ns, name)
                    else:
                        raise FeatureError(feature_field(field, ns, name), number_message(value))
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

    def terms(self, obj: dict, action_id=None) -> list:
        """Each feature of a validated object (and its id feature) as ``(label, index,
        sign, value, sketch slot, sketch sign)``: it adds sign × value at ``index`` of
        the side vector and sketch sign × value at the sketch slot, so that a vector is
        the sum of its terms (:meth:`_build`'s rules). ``label`` is ``(namespace, name,
        shown value)``; a string's value is 1, a bag gives a term per item (shown: the
        item), an embedding one per entry (name ``name[i]``, sign 1)."""
        out = []
        for ns, feats in iter_namespaces(obj, "features"):
            for name, value in feats.items():
                if not isinstance(name, str) or name.startswith("_") or value is None:
                    continue
                dkey = f"{ns}.{name}" if ns else name
                if dkey in self.dense:
                    offset = self.dense[dkey][0]
                    for i, v in enumerate(value):
                        _, _, j, t = self._slot("_dense", dkey, str(i))
                        out.append(((ns, f"{name}[{i}]", float(v)), offset + i, 1.0, float(v), j, t))
                    continue
                if type(value) is str:
                    items = [(value, (ns, name, value), 1.0)]
                elif type(value) is list:
                    items = [(item, (ns, name, item), 1.0) for item in value]
                elif value:
                    items = [(value, (ns, name), float(value))]
                else:
                    continue
                for shown, parts, v in items:
                    i, s, j, t = self._slot(*parts)
                    out.append(((ns, name, shown), i, s, v, j, t))
        if action_id is not None:
            i, s, j, t = self._slot("_id", action_id)
            out.append((("_id", "id", action_id), i, s, 1.0, j, t))
        return out

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


def memo_hits(memo: dict, actions) -> tuple | None:
    """``(ids, entries)`` when every action of a non-empty list is memoised under its id
    with equal features (``memo[id][0] == features``), else None.

    Only validated actions are memoised, so a hit is the validation: an action object
    must also hold exactly ``id`` and ``features``, ids be unique and of type str
    (anything else goes to the validating path, which names the field). Lookups and
    the ``==`` check run over whole lists (C loops), several times cheaper per action
    than a Python loop.
    """
    try:
        if type(actions[0]) is str:  # bare ids: their features are empty
            ids = tuple(actions)
            entries = tuple(map(memo.__getitem__, ids))
            if any(map(_FIRST, entries)):
                return None
        else:
            ids = tuple([action["id"] for action in actions])
            entries = tuple(map(memo.__getitem__, ids))
            if (tuple(map(_FIRST, entries)) != tuple([action["features"] for action in actions])
                    or set(map(len, actions)) != {2}):
                return None
    except (KeyError, TypeError, AttributeError, IndexError):
        return None
    if len(set(ids)) != len(ids) or set(map(type, ids)) != {str}:
        return None
    return ids, entries


#: Distinct strings :func:`shared_copy` shares before it starts afresh. Its own table,
#: not ``sys.intern``: interned strings are never freed on some Python versions, and
#: high-cardinality categories would then pile up for the life of the process.
SHARED_STRINGS_LIMIT = 200_000
_shared_strings: dict = {}


def shared_copy(obj):
    """A deep copy of a memo key for later ``==`` checks, with its strings shared: the
    names and categories that every memo entry repeats are then one object each, so a
    check reads a few shared strings instead of a copy per entry (fewer cache misses)."""
    kind = type(obj)
    if kind is str:
        if len(_shared_strings) >= SHARED_STRINGS_LIMIT:
            _shared_strings.clear()
        return _shared_strings.setdefault(obj, obj)
    if kind is dict:
        return {shared_copy(k): shared_copy(v) for k, v in obj.items()}
    if kind is list or kind is tuple:
        return kind(shared_copy(v) for v in obj)
    return copy.deepcopy(obj)
