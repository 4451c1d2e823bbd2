"""Off-policy evaluation of sequential policies: per-decision importance sampling.

The value of a policy π is its expected (discounted) return per episode. From episodes
logged by μ, with ρ_{i,t} = Π_{k≤t} π(a_k|s_k) / μ(a_k|s_k):

- **PDIS** (Precup et al. 2000): mean over episodes of Σ_t γ^t ρ_{i,t} r_{i,t}. Unbiased;
  the reward of step t is weighted only by the decisions up to t, so its variance is
  far below whole-trajectory IS. Normal interval over the per-episode terms.
- **WPDIS**: Σ_t γ^t Σ_i ρ_{i,t} r_{i,t} / Σ_i ρ_{i,t}: weighted (self-normalised) per
  step; biased but consistent, and much steadier when the weights are large. Episodes
  that ended earlier keep their last weight and add reward 0 (an absorbing state).
  Seeded percentile bootstrap over episodes.

Both report as ESS the effective sample size of the final per-episode weights, and
raise a :class:`ReplayWarning` when it is under 1% of the episodes. The
inputs are flat per-step arrays with an ``episodes`` label per step, steps of an
episode in order (as ``cbserve export --transitions`` writes them).
"""
from __future__ import annotations

import warnings

import numpy as np
import orjson

from .errors import EstimatorError, LogError, ReplayWarning
from .estimators import (LOW_ESS_SHARE, Estimate, _vector, effective_sample_size,
                         interval_from_terms)
from .readers import open_sniffed


def step_matrices(*, rewards, propensities, target_probs, episodes, gamma=1.0) -> tuple:
    """``(rho, discounted rewards)``, both (episodes, longest episode), padded as above."""
    r = _vector("rewards", rewards)
    mu = _vector("propensities", propensities, r.size)
    pi = _vector("target_probs", target_probs, r.size)
    labels = list(episodes)
    if len(labels) != r.size:
        raise EstimatorError(f"episodes: has {len(labels)} entries, rewards has {r.size}")
    if not 0.0 <= gamma <= 1.0:
        raise EstimatorError(f"gamma: must be in [0, 1], got {gamma!r}")
    if np.any(mu <= 0) or np.any(mu > 1):
        bad = int(np.flatnonzero((mu <= 0) | (mu > 1))[0])
        raise EstimatorError(f"propensities: row {bad} is {float(mu[bad])!r}, outside (0, 1]")
    if np.any(pi < 0) or np.any(pi > 1):
        bad = int(np.flatnonzero((pi < 0) | (pi > 1))[0])
        raise EstimatorError(f"target_probs: row {bad} is {float(pi[bad])!r}, outside [0, 1]")
    ids, starts = _runs(labels)
    lengths = np.diff(np.append(starts, r.size))
    n, horizon = len(ids), int(lengths.max())
    rho, disc = np.ones((n, horizon)), np.zeros((n, horizon))
    for i, (s, length) in enumerate(zip(starts, lengths)):
        ratios = np.cumprod(pi[s:s + length] / mu[s:s + length])
        rho[i, :length], rho[i, length:] = ratios, ratios[-1]
        disc[i, :length] = r[s:s + length] * gamma ** np.arange(length)
    return rho, disc


def pdis(*, level=0.95, **arrays) -> Estimate:
    """Per-decision importance sampling (see the module docstring)."""
    rho, disc = step_matrices(**arrays)
    terms = (rho * disc).sum(axis=1)
    value = float(terms.mean())
    low, high = interval_from_terms(value, terms, level)
    return Estimate("pdis", value, low, high, level, _ess("pdis", rho), len(terms), "normal")


def wpdis(*, level=0.95, n_boot=1000, seed=0, **arrays) -> Estimate:
    """Weighted per-decision importance sampling, bootstrap interval over episodes."""
    rho, disc = step_matrices(**arrays)
    value = _wpdis(rho, disc)
    rng = np.random.default_rng(seed)
    boots = np.array([_wpdis(rho[idx], disc[idx])
                      for idx in rng.integers(0, len(rho), (n_boot, len(rho)))])
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boots[np.isfinite(boots)], [alpha, 1.0 - alpha])
    return Estimate("wpdis", value, float(low), float(high), level, _ess("wpdis", rho),
                    len(rho), "bootstrap")


def _ess(name, rho) -> float:
    """ESS of the final episode weights; warns when it is a tiny share of the episodes."""
    ess = effective_sample_size(rho[:, -1])
    if ess < LOW_ESS_SHARE * len(rho):
        warnings.warn(f"{name}: effective sample size {ess:.1f} is under {LOW_ESS_SHARE:.0%} of "
                      f"{len(rho)} episodes: the target rarely follows the logged trajectories; "
                      "the estimate and its interval are not reliable", ReplayWarning, stacklevel=3)
    return ess


def _wpdis(rho, disc) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nansum((rho * disc).sum(axis=0) / rho.sum(axis=0)))


def _runs(labels) -> tuple:
    """Episode ids in order of first step and each one's start; refuse interleaving."""
    ids, starts, seen = [], [], set()
    for i, label in enumerate(labels):
        if i == 0 or label != labels[i - 1]:
            if label in seen:
                raise EstimatorError(f"episodes: steps of episode {label!r} are not contiguous "
                                     f"(again at row {i}); sort by episode, then step")
            seen.add(label)
            ids.append(label)
            starts.append(i)
    if not ids:
        raise EstimatorError("episodes: no steps")
    return ids, np.array(starts)


def read_transitions(path: str) -> list:
    """The records of a ``cbserve export --transitions`` file (plain or gzip, sniffed)."""
    out = []
    try:
        with open_sniffed(path) as fh:
            for line_no, line in enumerate(fh, 1):
                if line.strip():
                    out.append(orjson.loads(line))
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise LogError(f"{path}: line {line_no} is not JSON: {exc}") from exc
    return out


def evaluate_policy(records: list, policy, *, gamma: float = 1.0, level: float = 0.95,
                    seed: int = 0) -> dict:
    """PDIS and WPDIS of ``policy`` on exported transitions, plus the logged return.

    The policy decides on each logged state ``s`` (context with ``_session``) over the
    logged action ids; actions are passed as ids only (a sequential loop's fixed actions).
    """
    arrays = {"rewards": [t["r"] for t in records], "propensities": [t["p"] for t in records],
              "episodes": [(t["session_id"], t["episode"]) for t in records], "gamma": gamma}
    arrays["target_probs"] = [float(policy.decide(t["s"], t["actions"]).pmf[t["a"]])
                              for t in records]
    logged = pdis(**{**arrays, "target_probs": arrays["propensities"]}, level=level)
    return {"logged": logged, "pdis": pdis(**arrays, level=level),
            "wpdis": wpdis(**arrays, level=level, seed=seed)}
