"""Logged rounds as arrays: what the readers produce and the evaluation consumes.

:func:`parse_event` turns one DSJSON decision (cbserve's own log or Vowpal Wabbit's
decision-service JSON) into a round; :func:`build_rounds` packs many into a
:class:`LoggedRounds` (:func:`pack_rounds` from columns, whose contexts may be
:class:`Lazy`: the DSJSON reader parses them on demand). Pure: no files, no Redis.

From a DSJSON event:

- context and actions: as :func:`bandits.dsjson.decode` restores them (cbserve's
  logs exactly as the policy decided on them; VW's own with ids ``"1"``..``"K"``);
- the logged action and its propensity: ``_labelIndex`` / ``_label_probability`` when
  rewarded, else ``a[0] - 1`` / ``p[0]``; the reward is ``-_label_cost``;
- the logging pmf: ``a`` (1-based indices) and ``p`` (their probabilities);
- the event id: ``EventId``, or the reader's location of the line when VW's log has none.

An event without a label is *unrewarded*, one with ``"_skipLearn": true`` *skipped* (VW
does not learn it either), and a multi-slot (CCB or slates) event *unsupported* by the
single-slot rounds: each is counted, not evaluated. :func:`parse_slates` reads a
multi-slot event for the slate evaluation (:mod:`replay.slate_eval`) instead.
"""
from __future__ import annotations

import math
from itertools import chain
from dataclasses import dataclass, field

import numpy as np

from bandits.dsjson import decode
from bandits.errors import LogFormatError

from .errors import BadEvent, SkipLearn, Unrewarded, Unsupported

#: A logged pmf may miss 1 by this much (logs round probabilities).
PMF_SUM_TOLERANCE = 1e-3


#: Why a multi-slot event is counted apart instead of evaluated.
MULTI_SLOT = ("multi-slot event (c._slots / _outcomes: VW's CCB or slates layout); "
              "single-slot estimators do not evaluate it (a log of multi-slot decisions "
              "gets the multi-slot report)")
#: Why a single-slot event is counted apart in a multi-slot log.
SINGLE_SLOT = "single-slot event in a multi-slot log; the slate estimators do not evaluate it"


@dataclass
class LoggedRounds:
    """n logged rounds, padded to K = the largest action count among them.

    ``logging_pmf[i, k]`` is 0 for k >= ``n_actions[i]``; ``actions[i]`` holds
    ``n_actions[i]`` ``{"id", "features"}`` objects as a policy's ``decide`` takes them.
    """

    event_ids: list
    timestamps: list
    contexts: list
    actions: list
    chosen: np.ndarray        # (n,) int64, index of the logged action
    propensities: np.ndarray  # (n,) float64, μ(a_i | x_i)
    rewards: np.ndarray       # (n,) float64
    logging_pmf: np.ndarray   # (n, K) float64
    n_actions: np.ndarray     # (n,) int64
    where: list = field(default_factory=list)  # source location of each round (for messages)
    columns: object = None  # the rounds as token columns (replay.tokens), when the reader has them

    def __len__(self) -> int:
        return len(self.event_ids)

    @property
    def width(self) -> int:
        """K: the padded number of action columns."""
        return self.logging_pmf.shape[1]

    def slice(self, start: int, stop: int) -> "LoggedRounds":
        """Rounds ``start:stop``, in log order."""
        columns = None if self.columns is None else self.columns.slice(start, stop)
        return LoggedRounds(*(getattr(self, f)[start:stop] for f in _FIELDS), columns)

    def take(self, keep) -> "LoggedRounds":
        """The rounds at indices ``keep``, in that order."""
        idx = np.asarray(keep, dtype=np.intp)
        columns = None if self.columns is None else self.columns.take(idx)
        return LoggedRounds(*(value[idx] if isinstance(value, np.ndarray) else
                              value.take(idx) if isinstance(value, Lazy) else [value[j] for j in idx]
                              for value in (getattr(self, f) for f in _FIELDS)), columns)


_FIELDS = ("event_ids", "timestamps", "contexts", "actions", "chosen", "propensities",
           "rewards", "logging_pmf", "n_actions", "where")


class Lazy:
    """A read-only sequence whose item i is ``get(index[i])``, computed when read: a
    columnar reader's contexts are parsed only for the rounds a policy reads one by one.

    >>> names = Lazy(lambda i: f"row {i + 1}", np.arange(5))
    >>> len(names), names[0], list(names[3:]), list(names.take(np.array([4, 1])))
    (5, 'row 1', ['row 4', 'row 5'], ['row 5', 'row 2'])
    """

    def __init__(self, get, index):
        self._get, self._index = get, np.asarray(index)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Lazy(self._get, self._index[i])
        return self._get(int(self._index[i]))

    def __iter__(self):
        return map(self._get, self._index.tolist())

    def take(self, idx) -> "Lazy":
        return Lazy(self._get, self._index[np.asarray(idx, dtype=np.intp)])


def parse_event(event, where: str | None = None, own: bool = True) -> tuple:
    """``(event_id, timestamp, context, actions, chosen, propensity, reward, a, p)``.

    Takes ownership of ``event`` (its ``c`` becomes the context) unless ``own`` is
    false (a caller that reads the same event objects again). ``where`` (e.g.
    ``"log.json:12"``) stands in for a missing ``EventId``. Raises
    :class:`BadEvent` naming the field at fault, :class:`Unrewarded`,
    :class:`SkipLearn` or :class:`Unsupported`. ``a`` and ``p`` are checked as a pmf
    later, for a whole chunk at once, by :func:`build_rounds`.
    """
    if type(event) is not dict:
        raise BadEvent("event: must be a JSON object")
    event_id = event.get("EventId", where)
    if type(event_id) is not str or not event_id:
        raise BadEvent("EventId: must be a non-empty string")
    c = event.get("c")
    if type(c) is not dict:
        raise BadEvent("c: must be an object (the context and its _multi actions)")
    if "_slots" in c or "_outcomes" in event:
        raise Unsupported(MULTI_SLOT)
    if event.get("_skipLearn") is True:
        raise SkipLearn(event_id)
    multi = c.get("_multi")
    if type(multi) is not list or not multi:
        raise BadEvent("c._multi: must be a non-empty list of action feature objects")
    k = len(multi)
    try:
        context, pairs = decode(event, own=own)
    except LogFormatError as exc:
        raise BadEvent(str(exc)) from exc
    actions = [{"id": aid, "features": feats} for aid, feats in pairs]
    a, p = event.get("a"), event.get("p")
    if type(a) is not list or type(p) is not list or not a or len(a) != len(p):
        raise BadEvent("a, p: must be non-empty lists of equal length (action indices and "
                       "their probabilities)")
    if "_label_cost" not in event:
        raise Unrewarded(event_id)
    cost = event["_label_cost"]
    if type(cost) not in (int, float) or not _finite(cost):
        raise BadEvent(f"_label_cost: must be a finite number, got {cost!r}")
    chosen = event.get("_labelIndex", a[0] - 1 if type(a[0]) is int else None)
    if type(chosen) is not int or not 0 <= chosen < k:
        raise BadEvent(f"_labelIndex: must be an action index in 0..{k - 1}, got {chosen!r}")
    prob = event.get("_label_probability", p[0])
    if type(prob) not in (int, float) or not 0.0 < prob <= 1.0:
        raise BadEvent(f"_label_probability: must be in (0, 1], got {prob!r}")
    return event_id, event.get("Timestamp"), context, actions, chosen, float(prob), -float(cost), a, p


def parse_slates(event, where: str | None = None) -> tuple:
    """``(event_id, record, allowed)`` of a multi-slot event whose every slot is rewarded:
    the :class:`~bandits.dsjson_slots.SlatesRecord` and, per slot, the action indices it
    may show (``c._slots[j]._inc``; None: any).

    Raises :class:`BadEvent` naming the field at fault, :class:`Unrewarded` while a slot
    has no reward, :class:`SkipLearn` or :class:`Unsupported` (a single-slot event).
    """
    if type(event) is not dict:
        raise BadEvent("event: must be a JSON object")
    event_id = event.get("EventId", where)
    if type(event_id) is not str or not event_id:
        raise BadEvent("EventId: must be a non-empty string")
    if "_outcomes" not in event:
        raise Unsupported(SINGLE_SLOT)
    if event.get("_skipLearn") is True:
        raise SkipLearn(event_id)
    from bandits.dsjson_slots import decode_slots  # the multi-slot layout, read on demand

    try:
        record = decode_slots(event)
    except (LogFormatError, TypeError, ValueError) as exc:  # e.g. a _label_cost not a number
        raise BadEvent(str(exc)) from exc
    if any(s.reward is None for s in record.slots):
        raise Unrewarded(event_id)
    allowed = []
    for j, (item, slot) in enumerate(zip(event["c"]["_slots"], record.slots)):
        inc = item.get("_inc")
        if inc is not None and (type(inc) is not list or not all(
                type(i) is int and 0 <= i < len(record.pairs) for i in inc)):
            raise BadEvent(f"c._slots[{j}]._inc: must be a list of action indices "
                           f"(0..{len(record.pairs) - 1})")
        if len(set(slot.eligible)) != len(slot.eligible) or \
                abs(sum(slot.pmf) - 1.0) > PMF_SUM_TOLERANCE or not min(slot.pmf) >= 0.0 or \
                not 0.0 < slot.probability <= 1.0:
            raise BadEvent(f"_outcomes[{j}]._a/_p: must be distinct actions and a pmf with "
                           "the chosen action's probability in (0, 1]")
        allowed.append(None if inc is None else frozenset(inc))
    return event_id, record, allowed


def _finite(x) -> bool:
    """True for a number that is finite as a float (an integer too large is not)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def check_pmf(a, p, k) -> None:
    """Raise :class:`BadEvent` unless ``a``/``p`` are a pmf over k actions (1-based ``a``)."""
    if not all(type(i) is int and 1 <= i <= k for i in a):
        raise BadEvent(f"a: must be a non-empty list of 1-based action indices (1..{k})")
    if len(set(a)) != len(a):
        raise BadEvent("a: action indices must be distinct")
    if not all(type(x) in (int, float) and 0.0 <= x <= 1.0 for x in p):
        raise BadEvent(f"p: must be {len(a)} probabilities in [0, 1], one per entry of a")
    if abs(sum(p) - 1.0) > PMF_SUM_TOLERANCE:
        raise BadEvent(f"p: probabilities sum to {sum(p)!r}, not 1")


def _is_pmf(a, p, k) -> bool:
    try:
        check_pmf(a, p, k)
    except BadEvent:
        return False
    return True


def build_rounds(rows: list, where: list) -> tuple:
    """Pack :func:`parse_event` tuples into arrays (pmf padded to the widest round).

    Returns ``(LoggedRounds, problems)``: rows whose ``a``/``p`` are not a pmf are left
    out and listed as ``(where, message)``. The check is vectorised over the chunk.
    """
    columns = [list(c) for c in zip(*rows)] or [[] for _ in range(9)]
    return pack_rounds(columns, [len(actions) for actions in columns[3]], where)


def pack_rounds(columns: list, n_actions: list, where, numeric: bool = False) -> tuple:
    """:func:`build_rounds` for rounds given as columns, in the order of
    :func:`parse_event`'s tuple; ``contexts``, ``actions`` and ``where`` may be
    :class:`Lazy` (a reader that parses them on demand), ``n_actions`` holds K_i.
    ``numeric``: every ``a`` is known to hold ints and every ``p`` ints or floats only
    (a typed decoder checked them), so they are read straight into arrays.
    """
    ids, stamps, contexts, actions, chosen, props, rewards, a, p = columns
    n = len(ids)
    k = np.asarray(n_actions, np.int64).reshape(n)
    width = int(k.max()) if n else 0
    pmf, bad = _pmfs(a, p, k, n_actions, width, numeric, numeric)
    if bad.any():
        return _without(columns, n_actions, where, bad)
    return LoggedRounds(
        event_ids=ids, timestamps=stamps, contexts=contexts, actions=actions,
        chosen=np.fromiter(chosen, np.int64, n), propensities=np.fromiter(props, np.float64, n),
        rewards=np.fromiter(rewards, np.float64, n), logging_pmf=pmf, n_actions=k,
        where=where if isinstance(where, Lazy) else list(where)), []


def _pmfs(a, p, k, n_actions, width, numeric, distinct=False) -> tuple:
    """``(pmf (n, width), bad (n,))``: each row's ``p`` at its 1-based ``a`` (filled only
    when no row is bad), and whether a row is not a pmf over its ``k`` actions."""
    n = len(a)
    if distinct and n:
        shared = _pmfs_of_distinct(a, p, k, width)
        if shared is not None:
            return shared
    pmf = np.zeros((n, width))
    lengths = np.fromiter(map(len, a), np.int64, n)
    total = int(lengths.sum())
    try:  # numbers only: a string such as "0.2" would silently convert
        cols, probs = (np.fromiter(chain.from_iterable(a), np.int64, total),
                       np.fromiter(chain.from_iterable(p), np.float64, total)) if numeric else (
            np.array(list(chain.from_iterable(a))), np.array(list(chain.from_iterable(p))))
    except (TypeError, ValueError, OverflowError):
        cols = probs = None
    if cols is None or cols.dtype.kind != "i" or probs.dtype.kind not in "if" or cols.size != total:
        return pmf, np.array([not _is_pmf(a[i], p[i], n_actions[i]) for i in range(n)], bool)
    flat_rows = np.repeat(np.arange(n), lengths)
    cols, probs = cols - 1, probs.astype(np.float64, copy=False)
    bad = _bad_pmf_rows(flat_rows, cols, probs, lengths, k, width)
    if not bad.any():
        pmf[flat_rows, cols] = probs
    return pmf, bad


def _pmfs_of_distinct(a, p, k, width) -> tuple | None:
    """:func:`_pmfs` of numbers-only rows worked out once per distinct ``(a, p, K)``, when
    a reader shares each distinct list between its rows and few are distinct (a logger
    repeats its orders and pmfs); None otherwise."""
    n = len(a)
    a_ids, p_ids = list(map(id, a)), list(map(id, p))
    a_lists = dict(zip(a_ids, a))
    p_lists = dict(zip(p_ids, p)) if len(a_lists) <= n // 4 else {}
    if not p_lists or len(p_lists) > n // 4:
        return None
    a_slot = np.fromiter(map(dict(zip(a_lists, range(n))).__getitem__, a_ids), np.int64, n)
    p_slot = np.fromiter(map(dict(zip(p_lists, range(n))).__getitem__, p_ids), np.int64, n)
    keys, inverse = np.unique((a_slot * len(p_lists) + p_slot) * (width + 1) + k, return_inverse=True)
    rest, ks = np.divmod(keys, width + 1)
    ai, pi = np.divmod(rest, len(p_lists))
    a_lists, p_lists = list(a_lists.values()), list(p_lists.values())
    pmf, bad = _pmfs([a_lists[i] for i in ai.tolist()], [p_lists[i] for i in pi.tolist()],
                     ks, ks.tolist(), width, True)
    return pmf[inverse], bad[inverse]


def _bad_pmf_rows(flat_rows, cols, probs, lengths, n_actions, width) -> np.ndarray:
    """Rows whose indices are out of range or repeated, or whose p is not a pmf."""
    n = lengths.size
    bad_entry = (cols < 0) | (cols >= n_actions[flat_rows]) | ~((probs >= 0) & (probs <= 1))
    bad = np.bincount(flat_rows[bad_entry], minlength=n) > 0
    sums = np.bincount(flat_rows, weights=probs, minlength=n)
    bad |= ~(np.abs(sums - 1.0) <= PMF_SUM_TOLERANCE)
    cells = np.bincount(flat_rows * (width + 1) + np.clip(cols, 0, width), minlength=n * (width + 1))
    bad |= (cells.reshape(n, width + 1) > 1).any(axis=1)
    return bad


def _without(columns, n_actions, where, bad) -> tuple:
    """Rebuild without the bad rows; each one's message comes from :func:`check_pmf`."""
    a, p = columns[7], columns[8]
    problems = []
    for i in np.flatnonzero(bad):
        try:
            check_pmf(a[i], p[i], n_actions[i])
        except BadEvent as exc:
            problems.append((where[i], str(exc)))
        else:
            problems.append((where[i], "a, p: not a pmf over the actions"))
    keep = np.flatnonzero(~bad)
    rounds, _ = pack_rounds([_pick(c, keep) for c in columns], _pick(n_actions, keep),
                            _pick(where, keep))
    return rounds, problems


def _pick(values, keep):
    """``values`` at the indices ``keep`` (a list, or a :class:`Lazy` kept lazy)."""
    return values.take(keep) if isinstance(values, Lazy) else [values[i] for i in keep]


def concat(parts: list) -> LoggedRounds:
    """One LoggedRounds from several, in order (pmfs re-padded to the widest)."""
    if not parts:
        return build_rounds([], [])[0]
    width = max(p.width for p in parts)
    pmfs = [np.pad(p.logging_pmf, ((0, 0), (0, width - p.width))) for p in parts]
    return LoggedRounds(
        *(list(chain.from_iterable(getattr(p, f) for p in parts)) for f in _FIELDS[:4]),
        *(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS[4:7]),
        np.concatenate(pmfs), np.concatenate([p.n_actions for p in parts]),
        list(chain.from_iterable(p.where for p in parts)))
