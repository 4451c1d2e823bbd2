"""A batch of contexts as token counts: the columnar form the linear policies score at once.

A *token* is one feature key the hashing featurizer hashes: ``(namespace, name, None)``
for a number, ``(namespace, name, string)`` for a string or an item of a list of
strings. A batch of n flat contexts over U distinct tokens is the matrix V (n, U),
``V[i, u]`` the value token u has in row i (0 when absent). Every linear featurizer row
is affine in V: for action k, ``x_k(i) = e_k + Q_k V[i]`` (:mod:`replay.token_score`),
so a batch is scored with (U × U) algebra per action instead of a featurized row per
round.

Rows also carry their action set: ``set_index[i]`` into ``action_sets``, each the
validated ``[(id, features)]`` pairs, parsed once per distinct ``actions`` string.

>>> import numpy as np
>>> cols = TokenColumns.from_entries(n=2, rows=np.array([0, 0, 1]),
...     keys=[("u", "age", None), ("u", "c", "FR"), ("u", "age", None)],
...     x=np.array([31.0, 1.0, 40.0]), set_index=np.array([0, 0]), action_sets=[[("a", {})]])
>>> cols.tokens, cols.V.tolist()
([('u', 'age', None), ('u', 'c', 'FR')], [[31.0, 1.0], [40.0, 0.0]])
>>> cols.take(np.array([1])).V.tolist()
[[40.0, 0.0]]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Most distinct tokens in a batch scored in token space; a batch with more is scored
#: round by round (the algebra grows with U², a featurized row with d).
MAX_TOKENS = 64


@dataclass
class TokenColumns:
    """V (n, U) over ``tokens``; each row's action set."""

    V: np.ndarray
    tokens: list
    set_index: np.ndarray
    action_sets: list

    def __len__(self) -> int:
        return len(self.V)

    @classmethod
    def from_entries(cls, n, rows, keys, x, set_index, action_sets) -> "TokenColumns":
        """From one entry per (row, token): ``rows[e]``, ``keys[e]`` (hashable) and ``x[e]``;
        repeated tokens of one row add up (a bag holding an item twice)."""
        index: dict = {}
        codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, len(keys))
        return cls.from_codes(n, rows, codes, list(index), x, set_index, action_sets)

    @classmethod
    def from_codes(cls, n, rows, codes, tokens, x, set_index, action_sets) -> "TokenColumns":
        """As :meth:`from_entries` with each entry's token already a code into ``tokens``."""
        u = len(tokens)
        flat = np.bincount(rows * u + codes, weights=x, minlength=n * u) if u else np.zeros(0)
        return cls(flat.reshape(n, u), list(tokens), np.asarray(set_index), action_sets)

    def groups(self):
        """``(action set, row indices)`` for each action set among the rows."""
        order = np.argsort(self.set_index, kind="stable")
        sets, starts = np.unique(self.set_index[order], return_index=True)
        return zip(sets.tolist(), np.split(order, starts[1:]))

    def slice(self, start: int, stop: int) -> "TokenColumns":
        return TokenColumns(self.V[start:stop], self.tokens, self.set_index[start:stop],
                            self.action_sets)

    def take(self, idx) -> "TokenColumns":
        return TokenColumns(self.V[idx], self.tokens, self.set_index[idx], self.action_sets)
