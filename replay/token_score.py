"""Linear policies and the reward model on a whole batch at once, in token space.

With V (n, U) the batch's token values (:mod:`replay.tokens`), a shared featurizer's row
of action k is affine in V[i]: ``x_k(i) = e_k + Q_k V[i]``, where e_k holds the
intercept and the action's own features and Q_k (d, U) each token's context columns and
its context × action interactions (the sketch convolution is linear in the context).
A disjoint model's row is the context part alone, the same for every action. Then

- a ridge mean:   θ_kᵀx = θ_kᵀe_k + V (Q_kᵀθ_k);
- LinUCB's width: xᵀBx = e_kᵀBe_k + 2 V (Q_kᵀBe_k) + V (Q_kᵀBQ_k) Vᵀ (B = A⁻¹), row-wise;
- the reward model's Σφφᵀ over rows that chose k: n e eᵀ + e (Q s)ᵀ + (Q s) eᵀ + Q T Qᵀ
  with s = Σ V[i] and T = Σ V[i] V[i]ᵀ,

which cost U² per action and round where a featurized row costs d². The results are the
featurized rows' to rounding (tests hold them to 1e-9). ε-greedy and LinUCB are scored
here; any other policy (LinTS draws, VW, a Q-network) goes round by round.
"""
from __future__ import annotations

import numpy as np

from bandits import BanditError
from bandits.epsilon_greedy import EpsilonGreedy
from bandits.linucb import LinUCB

from .tokens import MAX_TOKENS, TokenColumns


#: Tokens whose unit vectors a TokenMap keeps (about 1 kB each) before it starts over.
UNITS_LIMIT = 20_000


class TokenMap:
    """One featurizer's view of tokens: each token's unit context vector, memoised."""

    def __init__(self, featurizer):
        self.f = featurizer
        self._units: dict = {}
        self._checked: dict = {}  # id(pairs) -> (pairs, accepted)
        self._dense = set(featurizer.context_dense)

    def usable(self, cols: TokenColumns, sets) -> bool:
        """False when a token names one of the featurizer's embeddings, or an action set
        of ``sets`` holds features the featurizer refuses: read those rounds one by one
        (where a refused round is dropped and named)."""
        if len(cols.tokens) > MAX_TOKENS:
            return False
        if self._dense and any((f"{ns}.{name}" if ns else name) in self._dense
                               for ns, name, _ in cols.tokens):
            return False
        return all(self._accepts(cols.action_sets[s]) for s in sets)

    def _accepts(self, pairs: list) -> bool:
        """Whether the featurizer takes every action of ``pairs`` (memoised per set)."""
        seen = self._checked.get(id(pairs))
        if seen is None or seen[0] is not pairs:
            try:
                self.f._act.action_vectors(pairs, self.f.action_id)
                ok = True
            except BanditError:
                ok = False
            if len(self._checked) >= UNITS_LIMIT:
                self._checked.clear()
            seen = self._checked[id(pairs)] = (pairs, ok)
        return seen[1]

    def units(self, tokens: list) -> np.ndarray:
        """(U, context width + sketch): the context vector of each token at value 1."""
        side, out = self.f._ctx, []
        for token in tokens:
            vec = self._units.get(token)
            if vec is None:
                if len(self._units) >= UNITS_LIMIT:
                    self._units.clear()
                ns, name, value = token
                i, s, j, t = side._slot(ns, name) if value is None else side._slot(ns, name, value)
                vec = np.zeros(side.width + side.sketch_dim)
                vec[i] += s
                if side.sketch_dim:
                    vec[side.width + j] += t
                self._units[token] = vec
            out.append(vec)
        return np.array(out).reshape(len(tokens), side.width + side.sketch_dim)

    def affine(self, tokens: list, pairs: list, shared: bool = True) -> tuple:
        """``(E (K, d), Q (K, d, U))`` of one action set: row k is E[k] + Q[k] v."""
        f, ctx, act = self.f, self.f._ctx, self.f._act
        units, lead, k = self.units(tokens), int(f.intercept), len(pairs)
        c0 = f.context_width
        if not shared:
            E, Q = np.zeros(c0), np.zeros((c0, len(tokens)))
            E[0:lead] = 1.0
            Q[lead:c0] = units[:, :ctx.width].T
            return np.broadcast_to(E, (k, c0)), np.broadcast_to(Q, (k,) + Q.shape)
        A = act.action_vectors(pairs, f.action_id)
        E, Q = np.zeros((k, f.dim)), np.zeros((k, f.dim, len(tokens)))
        E[:, 0:lead] = 1.0
        E[:, c0:c0 + act.width] = A[:, :act.width]
        Q[:, lead:c0, :] = units[:, :ctx.width].T
        if f.interaction_dim:
            sketches = units[:, ctx.width:].take(f._circulant, axis=1)  # (U, S, S)
            Q[:, c0 + act.width:, :] = np.einsum("ks,ust->ktu", A[:, act.width:], sketches)
        return E, Q


def supports(policy) -> bool:
    """Whether :func:`policy_pmf` scores ``policy`` in token space."""
    return type(policy) in (LinUCB, EpsilonGreedy)


def policy_pmf(policy, tokens: TokenMap, cols: TokenColumns, rows: np.ndarray, pairs: list) -> np.ndarray:
    """The pmf (len(rows), K) of an ε-greedy or LinUCB policy on the rows of one action set.

    Actions with the same parameters and rows (arms never learned by a disjoint model,
    or identical actions of a shared one) are scored once, so their scores tie exactly,
    as they do round by round."""
    shared = policy._shared
    ids = tuple(aid for aid, _ in pairs)
    E, Q = tokens.affine(cols.tokens, pairs, shared)
    if shared:
        keys = [E[k].tobytes() + Q[k].tobytes() for k in range(len(E))]
    else:
        keys = policy.bank_.lookup(ids).tolist()
    index: dict = {}
    inverse = np.array([index.setdefault(key, len(index)) for key in keys])
    first = np.unique(inverse, return_index=True)[1]
    theta, B = policy._params(tuple(ids[k] for k in first))
    E, Q = E[first], Q[first]
    if shared:
        theta, B = np.broadcast_to(theta, E.shape), np.broadcast_to(B, (len(E),) + B.shape)
    V = cols.V if len(rows) == len(cols.V) else cols.V[rows]
    scores = np.einsum("kd,kd->k", E, theta) + V @ np.einsum("kdu,kd->ku", Q, theta).T
    if type(policy) is LinUCB:
        BE = np.einsum("kde,ke->kd", B, E)
        BQ = np.matmul(B, Q)
        h = np.einsum("kdu,kd->ku", Q, BE)
        H = np.matmul(Q.transpose(0, 2, 1), BQ)  # (K, U, U)
        n, k, u = len(V), len(H), V.shape[1]
        VH = (V @ H.transpose(1, 0, 2).reshape(u, k * u)).reshape(n, k, u)  # one BLAS call
        quad = np.matmul(VH, V[:, :, None])[:, :, 0]
        w2 = np.einsum("kd,kd->k", E, BE) + 2.0 * V @ h.T + quad
        scores = scores + policy.alpha * np.sqrt(np.maximum(w2, 0.0))
        epsilon = policy.epsilon
    else:
        epsilon = policy.current_epsilon()
    return greedy_pmfs(scores[:, inverse], epsilon)


def greedy_pmfs(scores: np.ndarray, epsilon: float) -> np.ndarray:
    """:func:`bandits.exploration.greedy_pmf` of every row of ``scores`` (n, K).

    >>> greedy_pmfs(np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 1.0, 0.0, 0.0]]), 0.2).tolist()
    [[0.05, 0.45, 0.45, 0.05], [0.8500000000000001, 0.05, 0.05, 0.05]]
    """
    k = scores.shape[1]
    floor = epsilon / k
    top = scores == scores.max(axis=1, keepdims=True)
    ties = top.sum(axis=1, keepdims=True)
    share = np.where(ties == 1, 1.0 - epsilon + floor, (1.0 - epsilon) / ties + floor)
    return np.where(top, share, floor)


class RidgeSums:
    """Σφφᵀ and Σrφ of chosen rows, kept as small sums per (action set, chosen action,
    fold) over a vocabulary of tokens shared by the batches: n, Σv, Σvvᵀ, Σr, Σrv.
    :meth:`drain` turns them into the d × d statistics once (and whenever the vocabulary
    outgrows :data:`MAX_VOCABULARY`), instead of d × d products for every batch."""

    def __init__(self, tokens: TokenMap, n_folds: int):
        self.tokens, self.n_folds = tokens, n_folds
        self.vocabulary: dict = {}
        self.sums: dict = {}  # id(pairs) -> _SetSums

    def add(self, cols: TokenColumns, rows, pairs, chosen, rewards, folds, model) -> None:
        if len(self.vocabulary) + len(cols.tokens) > MAX_VOCABULARY:
            self.drain(model)
        vocab = self.vocabulary
        gid = np.array([vocab.setdefault(t, len(vocab)) for t in cols.tokens], np.intp)
        entry = self.sums.get(id(pairs))
        if entry is None:
            entry = self.sums[id(pairs)] = _SetSums(pairs, self.n_folds)
        entry.grow(len(vocab))
        V = cols.V[rows]
        group = chosen * self.n_folds + folds
        order = np.argsort(group, kind="stable")
        g, starts, counts = np.unique(group[order], return_index=True, return_counts=True)
        Vo, ro = V[order], rewards[order]
        bounds = np.append(starts, len(order)).tolist()
        T = np.stack([Vo[a:b].T @ Vo[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
        k, f = g // self.n_folds, g % self.n_folds
        cell = (k[:, None], f[:, None], gid[None, :])
        entry.n[k, f] += counts
        entry.r[k, f] += np.add.reduceat(ro, starts)
        entry.s[cell] += np.add.reduceat(Vo, starts, axis=0)
        entry.rv[cell] += np.add.reduceat(ro[:, None] * Vo, starts, axis=0)
        entry.t[k[:, None, None], f[:, None, None], gid[None, :, None], gid[None, None, :]] += T

    def drain(self, model) -> None:
        """Add the kept sums to ``model.A_``, ``model.b_``, ``model.counts_``; start over."""
        tokens = sorted(self.vocabulary, key=self.vocabulary.get)
        for entry in self.sums.values():
            entry.grow(len(tokens))
            E, Q = self.tokens.affine(tokens, entry.pairs)
            for k, f in zip(*np.nonzero(entry.n)):
                e, q = E[k], Q[k]
                qs = q @ entry.s[k, f]
                model.A_[f] += (entry.n[k, f] * np.outer(e, e) + np.outer(e, qs) + np.outer(qs, e)
                                + q @ entry.t[k, f] @ q.T)
                model.b_[f] += entry.r[k, f] * e + q @ entry.rv[k, f]
                model.counts_[f] += int(entry.n[k, f])
        self.vocabulary, self.sums = {}, {}


#: Tokens the reward model's running sums hold before they are turned into d × d sums.
MAX_VOCABULARY = 256


class _SetSums:
    """The running sums of one action set, (K, F, ...) arrays over the vocabulary."""

    def __init__(self, pairs: list, n_folds: int):
        k = len(pairs)
        self.pairs, self.n, self.r = pairs, np.zeros((k, n_folds), np.int64), np.zeros((k, n_folds))
        self.s, self.rv = np.zeros((k, n_folds, 0)), np.zeros((k, n_folds, 0))
        self.t = np.zeros((k, n_folds, 0, 0))

    def grow(self, size: int) -> None:
        """Zero-pad the per-token sums to ``size`` tokens (the vocabulary grew)."""
        have = self.s.shape[2]
        if size > have:
            pad = size - have
            self.s = np.pad(self.s, ((0, 0), (0, 0), (0, pad)))
            self.rv = np.pad(self.rv, ((0, 0), (0, 0), (0, pad)))
            self.t = np.pad(self.t, ((0, 0), (0, 0), (0, pad), (0, pad)))


def ridge_predict(tokens: TokenMap, cols: TokenColumns, rows, pairs, thetas, folds) -> np.ndarray:
    """q̂ (len(rows), K): each row scored by ``thetas[folds[row]]`` (thetas (F, d))."""
    E, Q = tokens.affine(cols.tokens, pairs)
    V = cols.V[rows]
    n, k, f = len(V), len(E), len(thetas)
    G = np.einsum("kdu,fd->ukf", Q, thetas).reshape(V.shape[1], k * f)
    return (V @ G).reshape(n, k, f)[np.arange(n), :, folds] + (thetas @ E.T)[folds]
