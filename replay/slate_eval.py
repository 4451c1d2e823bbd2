"""Evaluate candidate policies on a multi-slot log, per slot and per slate.

A multi-slot log (Vowpal Wabbit's CCB layout, :mod:`bandits.dsjson_slots`) is read
whole into memory, one record per decision whose every slot is rewarded (a decision
with a slot still unrewarded is counted as unrewarded). For every logged slot each
candidate decides, with :meth:`~bandits.Policy.decide`, over the actions that slot chose
among (the request's candidates not shown by the earlier *logged* slots, within the
slot's own list), in the slot's context (:func:`bandits.slates.slot_context`): this gives
its conditional probability of the logged choice. Then:

- per slot: the single-slot estimators (IPS, SNIPS, DR by default) with the conditional
  propensities (:func:`replay.slates.per_slot`); DR's reward model is one cross-fitted
  ridge over every slot, whose features are in its context;
- per slate: slate IPS and RIPS from the conditional probabilities; IIPS and the
  pseudo-inverse need both policies' marginal probabilities: the candidate's come from
  enumerating its own decisions (:mod:`replay.slate_marginals`), the logger's only when
  the logging policy is given; otherwise those rows say :data:`MARGINALS_NA`.

The logging policy is evaluated from the logged probabilities (weights 1): its slate IPS
and RIPS equal the mean logged slate reward, a sanity check of the log. Rows are
``{policy, slot, estimator, value, low, high, level, ess, n, ci, warnings, note}``;
``slot`` is a slot id or ``"slate"``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import orjson

from bandits import BanditError
from bandits.dsjson_slots import slot_feedback
from bandits.slates import Slot, slot_context

from .estimators import MODEL_BASED
from .errors import BadEvent, EventError, ReplayError, SkipLearn, Unrewarded, Unsupported
from .logs import build_rounds, parse_slates
from .readers import DSJSONLog, EventLog, ReadReport, open_sniffed
from .report import _num
from .reward_model import CrossFitRidge
from .slate_marginals import ENUMERATION_LIMIT, MC_SAMPLES, slate_marginals
from .slates import PER_SLOT_ESTIMATORS, SLATE_ESTIMATORS, per_slot
from .verdict import LOGGING, Verdict, conclude

#: What an IIPS or pseudo-inverse row says without the logging policy.
MARGINALS_NA = "n/a (needs the logging policy's marginals)"
#: The ``slot`` of a whole-slate row.
SLATE = "slate"
#: The slate estimators a verdict rests on, most trusted first: RIPS (exact with the
#: logged conditional propensities when a slot's reward depends on it and the slots
#: before it, with far less variance than slate IPS), then slate IPS (no assumption).
SLATE_PREFERENCE = ("rips", "slate_ips")
#: Events looked at to tell a multi-slot log from a single-slot one.
SNIFF_EVENTS = 100


@dataclass
class SlateEvaluation:
    """The rows, the reader's report, rounds evaluated, slot ids, dropped rounds."""

    rows: list
    report: ReadReport
    rounds: int
    slots: list
    train_rounds: int = 0
    dropped: list = field(default_factory=list)

    def verdict(self) -> Verdict:
        """The one-line outcome on the slate rows (:data:`SLATE_PREFERENCE`)."""
        scale = (self.rounds + self.train_rounds + len(self.dropped)) / max(1, self.rounds)
        rows = [r for r in self.rows if r["slot"] == SLATE and not r["note"]]
        return conclude(rows, None, scale, SLATE_PREFERENCE)

    def to_dict(self) -> dict:
        return {"kind": "multi-slot", "rows": self.rows, "log": self.report.to_dict(),
                "rounds": self.rounds, "train_rounds": self.train_rounds, "slots": self.slots,
                "dropped": [list(d) for d in self.dropped], "verdict": self.verdict().to_dict()}


def raw_events(source):
    """``(where, event dict or EventError)`` of a DSJSON file or an :class:`EventLog`;
    nothing for other sources (a Parquet log holds single-slot rounds only)."""
    if isinstance(source, DSJSONLog):
        with open_sniffed(source.path) as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield f"line {number}", orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        yield f"line {number}", BadEvent(f"invalid JSON: {exc}")
    elif isinstance(source, EventLog):
        yield from source._events()


def is_multi_slot(source) -> bool:
    """Whether the log's first readable event (of the first :data:`SNIFF_EVENTS`) is a
    multi-slot decision."""
    for number, (_, event) in enumerate(raw_events(source)):
        if type(event) is dict:
            return "_outcomes" in event
        if number >= SNIFF_EVENTS:
            break
    return False


def read_slates(source, limit=None) -> list:
    """``[(where, event_id, record, allowed)]`` of the rewarded multi-slot decisions
    (:func:`replay.logs.parse_slates`); the rest is counted in ``source.report``."""
    report = source.report = ReadReport(source.name)
    out = []
    for where, event in raw_events(source):
        if limit is not None and len(out) >= limit:
            break
        report.records += 1
        try:
            if isinstance(event, Exception):
                raise event
            out.append((where, *parse_slates(event, where)))
        except Unrewarded:
            report.unrewarded += 1
        except SkipLearn:
            report.skipped += 1
        except Unsupported as exc:
            report.unsupported_kind(str(exc))
        except EventError as exc:
            report.problem(where, str(exc))
    report.rounds = len(out)
    return out


def evaluate_slates(source, candidates: list, *, logging_policy=None,
                    estimators=PER_SLOT_ESTIMATORS, ci="normal", level=0.95, n_boot=1000,
                    folds=5, train_fraction=None, reward_featurizer=None, limit=None, seed=0,
                    marginal_limit=ENUMERATION_LIMIT, marginal_samples=MC_SAMPLES) -> SlateEvaluation:
    """Every frozen candidate's per-slot and slate estimates on ``source`` (and the
    logger's); ``logging_policy`` (a policy that decides as the logger did) enables IIPS
    and the pseudo-inverse. ``train_fraction`` trains the candidates on that earlier
    share of the decisions (every slot's feedback) and evaluates on the rest."""
    names = [c.name for c in candidates]
    if len(set(names)) != len(names) or LOGGING in names:
        raise ReplayError(f"candidate names must be distinct and not {LOGGING!r}: {names}")
    replaying = [c.name for c in candidates if c.learn != "frozen"]
    if replaying:
        raise ReplayError(f"{replaying[0]}: multi-slot logs evaluate frozen candidates only "
                          "(learn = \"frozen\")")
    rounds = read_slates(source, limit)
    train = _train(rounds, candidates, train_fraction)
    table = _SlotTable(rounds[train:], candidates)
    if not table.rounds:
        raise ReplayError(f"{source.name}: no rewarded multi-slot decisions to evaluate\n"
                          + source.report.summary())
    options = {"ci": ci, "level": level, "n_boot": n_boot, "seed": seed}
    model_based = any(e in MODEL_BASED for e in estimators)
    q_hat = table.reward_model(reward_featurizer, folds) if model_based else None
    rows = []
    for name in [LOGGING] + names:
        rows += _slot_rows(name, table, q_hat, estimators, options)
        rows += _slate_rows(name, table, logging_policy, options, marginal_limit,
                            marginal_samples, seed)
    return SlateEvaluation(rows, source.report, len(table.rounds), table.slot_ids, train,
                           sorted(table.dropped.items()))


def _train(rounds, candidates, train_fraction) -> int:
    """Rounds the candidates learned from (the first ``train_fraction`` share)."""
    if train_fraction is None:
        return 0
    if not isinstance(train_fraction, (int, float)) or not 0.0 < train_fraction < 1.0:
        raise ReplayError(f"train_fraction: must be in (0, 1), got {train_fraction!r}")
    cut = int(len(rounds) * train_fraction)
    batch = [slot_feedback(rec, j) for _, _, rec, _ in rounds[:cut] for j in range(len(rec.slots))]
    for cand in candidates:
        try:
            cand.policy.learn(batch)
        except BanditError as exc:
            raise ReplayError(f"{cand.name}: cannot learn from the training slice: {exc}") from exc
    return cut


class _SlotTable:
    """One row per (decision, slot): the slot's context, its actions in request order,
    the logged choice's position, logged pmf and reward, each candidate's pmf."""

    def __init__(self, rounds, candidates):
        self.candidates, self.dropped = candidates, {}
        self.rounds, self.rows = [], []
        for where, event_id, record, allowed in rounds:
            try:
                rows = [self._row(record, j) for j in range(len(record.slots))]
            except BanditError as exc:
                self.dropped[where] = f"unusable context, slot or candidate decision: {exc}"
                continue
            self.rows += [(len(self.rounds), j, row) for j, row in enumerate(rows)]
            self.rounds.append((where, event_id, record, allowed))
        self.slot_ids = list(dict.fromkeys(s.id for _, _, rec, _ in self.rounds for s in rec.slots))
        self.width = max((len(r[2]["actions"]) for r in self.rows), default=0)

    def _row(self, record, j) -> dict:
        s = record.slots[j]
        ctx = slot_context(record.context, Slot(s.id, s.features), f"slots[{j}]")
        order = sorted(s.eligible)
        logged = dict(zip(s.eligible, s.pmf))
        actions = [{"id": record.pairs[a][0], "features": record.pairs[a][1]} for a in order]
        pmfs = {c.name: c.policy.decide(ctx, actions).pmf for c in self.candidates}
        return {"slot": s.id, "context": ctx, "actions": actions, "chosen": order.index(s.action),
                "logged": np.array([logged[a] for a in order]), "reward": s.reward, "pmfs": pmfs}

    def padded(self, pmf) -> np.ndarray:
        return np.pad(pmf, (0, self.width - pmf.size))

    def reward_model(self, featurizer, folds) -> np.ndarray:
        """Cross-fitted q̂ of every row, (rows, width); a decision's slots share a fold."""
        model = CrossFitRidge(featurizer, folds)
        try:
            feats = [model.rows(r["context"], r["actions"]) for _, _, r in self.rows]
        except BanditError as exc:
            raise ReplayError(f"reward model: cannot featurize a slot: {exc}") from exc
        tuples = [(str(i), None, r["context"], r["actions"], r["chosen"],
                   float(r["logged"][r["chosen"]]), r["reward"],
                   list(range(1, len(r["actions"]) + 1)), r["logged"].tolist())
                  for i, (_, _, r) in enumerate(self.rows)]
        logged, problems = build_rounds(tuples, [str(i) for i in range(len(tuples))])
        if problems:
            raise ReplayError(f"slot row {problems[0][0]}: {problems[0][1]}")
        positions = np.array([i for i, _, _ in self.rows])
        model.add(logged, positions, feats)
        return model.predict(logged, positions, self.width, feats)


def _slot_rows(name, table, q_hat, estimators, options) -> list:
    """Per-slot rows of one policy: the single-slot estimators on that slot's rows."""
    out = []
    for slot_id in table.slot_ids:
        idx = [k for k, (_, _, r) in enumerate(table.rows) if r["slot"] == slot_id]
        rows = [table.rows[k][2] for k in idx]
        chosen = np.array([r["chosen"] for r in rows])
        logged = np.stack([table.padded(r["logged"]) for r in rows])
        target = logged if name == LOGGING else np.stack([table.padded(r["pmfs"][name]) for r in rows])
        arrays = {"rewards": np.array([r["reward"] for r in rows]),
                  "propensities": logged[np.arange(len(rows)), chosen],
                  "target_probs": target[np.arange(len(rows)), chosen]}
        if q_hat is not None:
            arrays.update(q_hat=q_hat[idx], target_pmf=target, actions=chosen,
                          logging_pmf=None if name == LOGGING else logged)
        for est in estimators:
            result, notes = _caught(per_slot, [arrays], (est,), **options)
            out.append(_row(name, slot_id, result[0][est], notes))
    return out


def _slate_rows(name, table, logging_policy, options, limit, samples, seed) -> list:
    """Slate rows of one policy: slate IPS and RIPS; IIPS and the pseudo-inverse for a
    candidate when the logging policy is known."""
    arrays = _slate_arrays(name, table)
    out = [_row(name, SLATE, *_caught(SLATE_ESTIMATORS[e], **arrays, **options))
           for e in ("slate_ips", "rips")]
    if name == LOGGING:
        return out
    if logging_policy is None:
        return out + [_missing(name, e, options["level"]) for e in ("iips", "pseudo_inverse")]
    arrays.update(_marginal_arrays(name, table, logging_policy, limit, samples, seed))
    return out + [_row(name, SLATE, *_caught(SLATE_ESTIMATORS[e], **arrays, **options))
                  for e in ("iips", "pseudo_inverse")]


def _slate_arrays(name, table) -> dict:
    """(n, L) rewards and conditional probabilities; a slot a decision lacks is padded."""
    n, n_slots = len(table.rounds), max(len(rec.slots) for _, _, rec, _ in table.rounds)
    r, mu, pi = np.zeros((n, n_slots)), np.ones((n, n_slots)), np.ones((n, n_slots))
    for i, j, row in table.rows:
        r[i, j] = row["reward"]
        mu[i, j] = row["logged"][row["chosen"]]
        pi[i, j] = mu[i, j] if name == LOGGING else row["pmfs"][name][row["chosen"]]
    return {"rewards": r, "propensities": mu, "target_probs": pi}


def _marginal_arrays(name, table, logging_policy, limit, samples, seed) -> dict:
    """IIPS's and the pseudo-inverse's arrays from both policies' enumerated slates."""
    cand = next(c for c in table.candidates if c.name == name)
    n, n_slots = len(table.rounds), max(len(rec.slots) for _, _, rec, _ in table.rounds)
    m = max(len(rec.pairs) for _, _, rec, _ in table.rounds)
    t_marg, l_marg = np.ones((n, n_slots)), np.ones((n, n_slots))
    slates = np.zeros((n, n_slots), dtype=np.int64)
    q, gamma = np.zeros((n, n_slots, m)), np.zeros((n, n_slots * m, n_slots * m))
    for i, (_, _, rec, allowed) in enumerate(table.rounds):
        size, k = len(rec.slots), len(rec.pairs)
        target, logger = (slate_marginals(sequential_pmf(p.decide, rec, allowed), size, k,
                                          limit=limit, samples=samples, seed=seed)
                          for p in (cand.policy, getattr(logging_policy, "policy", logging_policy)))
        chosen = np.array([s.action for s in rec.slots])
        slates[i, :size] = chosen
        t_marg[i, :size] = target.marginals[np.arange(size), chosen]
        l_marg[i, :size] = logger.marginals[np.arange(size), chosen]
        q[i, :size, :k] = target.marginals
        where = (np.arange(size)[:, None] * m + np.arange(k)).ravel()
        gamma[i][np.ix_(where, where)] = logger.second_moment
    if not l_marg.min() > 0.0:
        raise ReplayError("logging policy: gives probability 0 to a logged slot's action; "
                          "it is not the policy that wrote the log")
    return {"target_marginals": t_marg, "logging_marginals": l_marg, "slates": slates,
            "target_slot_marginals": q, "logging_second_moment": gamma}


def sequential_pmf(decide, record, allowed):
    """``pmf_fn(j, earlier) -> (m,)`` of a policy filling ``record``'s slots in order (as
    :func:`bandits.slates.decide_slots` does), for :mod:`replay.slate_marginals`."""
    m = len(record.pairs)
    contexts = [slot_context(record.context, Slot(s.id, s.features)) for s in record.slots]

    def pmf_fn(j, earlier):
        eligible = [a for a in range(m) if a not in earlier and (allowed[j] is None or a in allowed[j])]
        pmf = np.zeros(m)
        pmf[eligible] = decide(contexts[j], [{"id": record.pairs[a][0],
                                              "features": record.pairs[a][1]} for a in eligible]).pmf
        return pmf
    return pmf_fn


def _caught(fn, *args, **kwargs) -> tuple:
    """``(fn(...), the distinct warnings it issued)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, sorted({str(w.message) for w in caught})


def _row(policy, slot, estimate, notes) -> dict:
    return {"policy": policy, "slot": slot, **estimate.to_dict(), "warnings": notes, "note": ""}


def _missing(policy, estimator, level) -> dict:
    nan = float("nan")
    return {"policy": policy, "slot": SLATE, "estimator": estimator, "value": nan, "low": nan,
            "high": nan, "level": level, "ess": nan, "n": 0, "ci": "", "warnings": [],
            "note": MARGINALS_NA}


def format_slate_table(result: SlateEvaluation) -> str:
    """Policy, slot, estimator, value, interval, ESS and n; ``!`` marks rows with
    warnings, listed under the table; rows that cannot be computed say why."""
    head = (f"{'policy':<24}{'slot':<12}{'estimator':<16}{'value':>10}{'CI low':>10}"
            f"{'CI high':>10}{'ESS':>10}{'n':>8}")
    lines = [head, "-" * len(head)]
    for row in result.rows:
        start = f"{row['policy'][:23]:<24}{row['slot'][:11]:<12}{row['estimator']:<16}"
        if row["note"]:
            lines.append(start + f"  {row['note']}")
            continue
        lines.append(start + f"{_num(row['value']):>10}{_num(row['low']):>10}"
                     f"{_num(row['high']):>10}{row['ess']:>10.1f}{row['n']:>8d}"
                     + (" !" if row["warnings"] else ""))
    level = result.rows[0]["level"] if result.rows else 0.95
    lines.append(f"intervals: {level:.0%}; slot rows use the slot's conditional propensities, "
                 "slate rows estimate the expected sum of slot rewards")
    lines.append(result.verdict().text)
    notes = sorted({(r["policy"], r["slot"], r["estimator"], w) for r in result.rows
                    for w in r["warnings"]})
    lines += [f"! {p} {s} {e}: {w.removeprefix(e + ': ')}" for p, s, e, w in notes]
    return "\n".join(lines)


def slate_plot_rows(result: SlateEvaluation) -> list:
    """The slate rows that have a value, for :func:`replay.report.plot`."""
    return [r for r in result.rows if r["slot"] == SLATE and not r["note"]]
