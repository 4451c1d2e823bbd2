"""Which features earn their keep: each namespace's value, measured by leaving it out.

For every context namespace and every action namespace found in a log, a fresh policy
is trained on the earlier part of the log (the first 1 − ``holdout`` share of its
rewarded rounds, in log order) with that namespace removed from every context (or from
every action's features), and once with every namespace (the baseline). Each trained
policy is then evaluated off-policy on the held-out later rounds, with the namespace
removed there too, by DR and SNIPS (:mod:`replay.estimators`), against one
cross-fitted reward model that sees every namespace (:class:`~replay.reward_model.CrossFitRidge`).

**The loss when a namespace is dropped** is V(baseline) − V(without it), estimated by
DR on the *same* held-out rounds, so the comparison is paired: with
t_i(π) = Σ_k π(k|x_i) q̂(x_i, k) + π(a_i|x_i) / μ_i · (r_i − q̂(x_i, a_i)), the per-round
DR term of policy π, the loss is the mean of d_i = t_i(baseline) − t_i(without), and its
interval is the normal (or bootstrap) interval of that mean over the d_i, not a
combination of the two policies' separate intervals: what the rounds share cancels.

A namespace whose loss interval includes 0 or lies below it (dropping it does not
hurt) is a *candidate to drop*; namespaces are ranked by the loss (the value they carry).

**Overlap.** Off-policy figures are only as good as the logger's exploration of what
the trained policies choose. When the ESS of the held-out importance weights
π(a_i|x_i) / μ_i of the baseline or of any trained policy is under ``min_ess``
(default: the larger of :data:`~replay.estimators.MIN_ESS` = 30 and 1 % of the
held-out rounds), or a policy puts more than :data:`UNEXPLORED_SHARE` of its
probability on actions the logger never tried (a deterministic logger), the result
carries a ``warning``, no interval, no flag and no rank: its table cannot be trusted.

The policy is trained by the caller's ``fit(rounds) -> policy`` (the service passes the
loop's policy trained as ``cbserve train`` trains it, :mod:`service.features_cli`), so
this module stays free of the service. Pure: no files.

References: Dudík, Langford & Li 2011 (DR); Swaminathan & Joachims 2015 (SNIPS).

Examples
--------
>>> namespace_label(Namespace("context", "user")), namespace_label(Namespace("action", ""))
('context:user', 'action:(top level)')
>>> without_namespace({"user": {"age": 3}, "device": {"os": "ios"}, "_session": {}},
...                   "device")
{'user': {'age': 3}, '_session': {}}
>>> without_namespace({"user": {"age": 3}, "country": "FR"}, "")  # top-level features
{'user': {'age': 3}}
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Callable

import numpy as np

from bandits import BanditError
from bandits.inputs import DEFAULT_NAMESPACE

from .errors import ReplayError
from .estimators import CI_METHODS, LOW_ESS_SHARE, MIN_ESS, dr, snips
from .logs import LoggedRounds
from .reward_model import CrossFitRidge

#: Target probability on actions the logger never tried tolerated, as a share of the
#: held-out rounds, before the result is flagged (DR cannot see those rewards).
UNEXPLORED_SHARE = 0.01
CONTEXT, ACTION = "context", "action"
#: The row of the policy trained with every namespace.
BASELINE = "baseline"


@dataclass(frozen=True, order=True)
class Namespace:
    """One namespace of the log: ``side`` is ``"context"`` or ``"action"``; ``name`` ""
    is the top-level (namespace-less) features."""

    side: str
    name: str


def namespace_label(ns: Namespace) -> str:
    """``"context:user"``; the top-level features are ``"(top level)"``."""
    return f"{ns.side}:{ns.name if ns.name != DEFAULT_NAMESPACE else '(top level)'}"


def _names(obj: dict) -> set:
    """Namespaces of a context or an action's features (metadata keys ``_x`` are none)."""
    out = set()
    for key, value in obj.items():
        if isinstance(key, str) and not key.startswith("_"):
            out.add(key if isinstance(value, dict) else DEFAULT_NAMESPACE)
    return out


def find_namespaces(rounds: LoggedRounds) -> list:
    """Every context namespace, then every action namespace, of ``rounds`` (sorted)."""
    ctx, act = set(), set()
    for context, actions in zip(rounds.contexts, rounds.actions):
        ctx |= _names(context or {})
        for action in actions:
            act |= _names(action.get("features") or {})
    return [Namespace(CONTEXT, n) for n in sorted(ctx)] + [Namespace(ACTION, n) for n in sorted(act)]


def without_namespace(obj: dict, name: str) -> dict:
    """A copy of a context (or an action's features) without namespace ``name``."""
    if name == DEFAULT_NAMESPACE:
        return {k: v for k, v in obj.items() if k.startswith("_") or isinstance(v, dict)}
    return {k: v for k, v in obj.items() if k != name}


def drop_namespace(rounds: LoggedRounds, ns: Namespace | None) -> LoggedRounds:
    """``rounds`` with ``ns`` removed from every context or every action (None: as is).
    The caller's rounds are not changed."""
    if ns is None:
        return rounds
    out = rounds.slice(0, len(rounds))
    if ns.side == CONTEXT:
        out.contexts = [without_namespace(c or {}, ns.name) for c in rounds.contexts]
    else:
        out.actions = [[{**a, "features": without_namespace(a.get("features") or {}, ns.name)}
                        for a in actions] for actions in rounds.actions]
    return out


@dataclass
class PolicyValue:
    """One trained policy on the held-out rounds: DR and SNIPS estimates (dicts of
    :class:`~replay.estimators.Estimate`), the ESS of its importance weights, its
    probability on never-explored actions (share of rounds) and the estimators' warnings."""

    dr: dict
    snips: dict
    ess: float
    unexplored: float
    warnings: list


@dataclass
class NamespaceRow:
    """The value lost by dropping one namespace (``loss`` > 0: it carried value), with the
    paired interval [``low``, ``high``] (None when overlap is too small), the dropped
    policy's own estimates, ``candidate_to_drop`` and ``rank`` (1: carries the most).
    ``same_decisions``: without it the policy gives every held-out round the baseline's
    pmf, so the loss is exactly 0 ([0, 0])."""

    namespace: str
    side: str
    name: str
    loss: float
    low: float | None
    high: float | None
    policy: PolicyValue
    trusted: bool
    same_decisions: bool
    candidate_to_drop: bool | None = None
    rank: int | None = None


@dataclass
class FeatureEvaluation:
    """The baseline's value, one row per namespace (ranked first when trusted), the split,
    the overlap figures and ``warning`` (None, or why the table cannot be trusted)."""

    baseline: PolicyValue
    rows: list
    train_rounds: int
    holdout_rounds: int
    dropped: int
    level: float
    min_ess: float
    warning: str | None = None

    def to_dict(self) -> dict:
        return {"baseline": asdict(self.baseline), "rows": [asdict(r) for r in self.rows],
                "train_rounds": self.train_rounds, "holdout_rounds": self.holdout_rounds,
                "dropped_rounds": self.dropped, "level": self.level, "min_ess": self.min_ess,
                "trusted": self.warning is None, "warning": self.warning}


def evaluate_features(rounds: LoggedRounds, fit: Callable, *, holdout: float = 0.3,
                      level: float = 0.95, ci: str = "normal", seed: int = 0, folds: int = 5,
                      reward_featurizer=None, min_ess: float | None = None,
                      progress: Callable | None = None) -> FeatureEvaluation:
    """Train without each namespace of ``rounds`` and compare with the baseline.

    Parameters
    ----------
    rounds : LoggedRounds, the rewarded rounds of the log in log order (n of them)
    fit : callable, ``fit(rounds) -> policy``: a fresh policy trained on ``rounds``
    holdout : float in (0, 1), the later share of the rounds evaluated on
    level : float, the intervals' confidence level
    ci : ``"normal"`` or ``"bootstrap"`` (seeded by ``seed``)
    min_ess : float, the smallest ESS trusted (default max(30, 1 % of the held-out rounds))
    progress : callable, ``progress(label)`` after each policy is trained

    The loss interval is paired: the per-round DR terms of the baseline and of the
    policy without the namespace are differenced round by round on the same held-out
    rounds, and the interval is that of the differences' mean (module docstring).
    """
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0.0 < holdout < 1.0:
        raise ReplayError(f"holdout: must be in (0, 1), got {holdout!r}")
    if ci not in CI_METHODS:
        raise ReplayError(f"ci: must be one of {', '.join(CI_METHODS)}, got {ci!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ReplayError(f"level: must be in (0, 1), got {level!r}")
    n_train = int(len(rounds) * (1.0 - holdout))
    if n_train < 1 or n_train >= len(rounds):
        raise ReplayError(f"holdout: {holdout} of {len(rounds)} rounds leaves "
                          f"{n_train} to train on and {len(rounds) - n_train} to evaluate on")
    train, test = rounds.slice(0, n_train), rounds.slice(n_train, len(rounds))
    progress = progress or (lambda label: None)
    spaces = [None] + find_namespaces(rounds)
    policies = {}
    for ns in spaces:
        policies[ns] = fit(drop_namespace(train, ns))
        progress(BASELINE if ns is None else namespace_label(ns))
    test, q_hat, pmfs, dropped = _score(test, policies, reward_featurizer, folds)
    threshold = max(MIN_ESS, LOW_ESS_SHARE * len(test)) if min_ess is None else float(min_ess)
    values = {ns: _value(test, q_hat, pmf, level, ci, seed) for ns, pmf in pmfs.items()}
    terms = {ns: _dr_terms(test, q_hat, pmf) for ns, pmf in pmfs.items()}
    ok = {ns: v.ess >= threshold and v.unexplored <= UNEXPLORED_SHARE for ns, v in values.items()}
    rows = []
    for ns in spaces[1:]:
        trusted = ok[None] and ok[ns]
        loss, low, high = _paired(terms[None] - terms[ns], level, ci, seed)
        rows.append(NamespaceRow(namespace_label(ns), ns.side, ns.name, loss,
                                 low if trusted else None, high if trusted else None,
                                 values[ns], trusted, bool(np.array_equal(pmfs[None], pmfs[ns]))))
    result = FeatureEvaluation(values[None], rows, n_train, len(test), dropped, level, threshold,
                               _warning(values, ok, threshold, len(test)))
    _rank(result)
    return result


def _score(test: LoggedRounds, policies: dict, reward_featurizer, folds) -> tuple:
    """Held-out rounds every policy and the reward model can take: ``(rounds, q̂ (n, K),
    {namespace: pmf (n, K)}, rounds left out)``."""
    model = CrossFitRidge(reward_featurizer, folds)
    views = {ns: drop_namespace(test, ns) for ns in policies}
    keep, feats, pmfs = [], [], {ns: [] for ns in policies}
    for j, (ctx, actions) in enumerate(zip(test.contexts, test.actions)):
        try:
            rows = model.rows(ctx, actions)
            row_pmfs = {ns: p.decide(views[ns].contexts[j], views[ns].actions[j]).pmf
                        for ns, p in policies.items()}
        except BanditError:
            continue
        keep.append(j)
        feats.append(rows)
        for ns, pmf in row_pmfs.items():
            pmfs[ns].append(np.pad(pmf, (0, test.width - pmf.size)))
    if not keep:
        raise ReplayError("no held-out round could be scored by the policies and the reward model")
    test = test if len(keep) == len(test) else test.take(keep)
    positions = np.arange(len(test))
    model.add(test, positions, feats)
    q_hat = model.predict(test, positions, test.width, feats)
    return test, q_hat, {ns: np.stack(p) for ns, p in pmfs.items()}, len(views[None]) - len(keep)


def _value(test: LoggedRounds, q_hat, pmf, level, ci, seed) -> PolicyValue:
    """DR and SNIPS of one policy's pmf on the held-out rounds, warnings kept."""
    n = len(test)
    target = pmf[np.arange(n), test.chosen]
    inputs = {"rewards": test.rewards, "propensities": test.propensities, "target_probs": target,
              "q_hat": q_hat, "target_pmf": pmf, "actions": test.chosen,
              "logging_pmf": test.logging_pmf, "level": level, "ci": ci, "seed": seed}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est_dr, est_snips = dr(**inputs), snips(**inputs)
    unexplored = float(pmf[test.logging_pmf <= 0.0].sum()) / n
    return PolicyValue(_plain(est_dr.to_dict()), _plain(est_snips.to_dict()), est_dr.ess, unexplored,
                       sorted({str(w.message) for w in caught}))


def _plain(d: dict) -> dict:
    """NaN bounds (no interval) as None, so the JSON holds null."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _dr_terms(test: LoggedRounds, q_hat, pmf) -> np.ndarray:
    """t_i = Σ_k π(k|x_i) q̂_ik + π(a_i|x_i)/μ_i · (r_i − q̂_{i,a_i}): DR's per-round terms."""
    idx = np.arange(len(test))
    w = pmf[idx, test.chosen] / test.propensities
    return np.einsum("ij,ij->i", pmf, q_hat) + w * (test.rewards - q_hat[idx, test.chosen])


def _paired(diffs: np.ndarray, level, ci, seed) -> tuple:
    """``(mean, low, high)`` of the per-round differences; identical decisions on every
    round give exactly [0, 0]."""
    mean = float(diffs.mean())
    if not np.any(diffs):
        return mean, 0.0, 0.0
    if ci == "bootstrap":
        rng = np.random.default_rng(seed)
        means = np.array([diffs[rng.integers(0, diffs.size, diffs.size)].mean() for _ in range(1000)])
        low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
        return mean, float(low), float(high)
    half = NormalDist().inv_cdf(0.5 + level / 2) * float(diffs.std(ddof=1)) / math.sqrt(diffs.size) \
        if diffs.size > 1 else math.inf
    return mean, mean - half, mean + half


def _warning(values: dict, ok: dict, threshold: float, n: int) -> str | None:
    """Why the table cannot be trusted, or None."""
    bad = [ns for ns in values if not ok[ns]]
    if not bad:
        return None
    worst = min(values[ns].ess for ns in values)
    unexplored = max(values[ns].unexplored for ns in values)
    names = ", ".join(BASELINE if ns is None else namespace_label(ns) for ns in bad)
    text = (f"overlap too small: the ESS of the held-out importance weights is "
            f"{values[None].ess:.1f} for the baseline and {worst:.1f} at worst, of {n} held-out "
            f"rounds (trusted from {threshold:g})")
    if unexplored > UNEXPLORED_SHARE:
        text += (f", and up to {unexplored:.0%} of a policy's probability is on actions the "
                 "logger never tried")
    return f"{text}; the figures for {names} cannot be trusted (no intervals, flags or ranks)"


def _rank(result: FeatureEvaluation) -> None:
    """Order the rows by the value they carry; flag and rank the trusted ones."""
    result.rows.sort(key=lambda r: -r.loss)
    rank = 0
    for row in result.rows:
        if row.trusted:
            rank += 1
            row.rank = rank
            row.candidate_to_drop = bool(row.low <= 0.0)
