"""The evaluation's outputs: a text table, a JSON document and a PNG plot.

A missing interval (too small a sample, see :mod:`replay.estimators`) prints as
``n/a`` and is written to JSON as ``null``; the table ends with the verdict line.
"""
from __future__ import annotations

import json
import math

from .verdict import Verdict, conclude


def format_table(rows: list, verdict: Verdict | None = None) -> str:
    """Policy, estimator, value, interval, ESS and n; a ``!`` marks rows with warnings,
    listed under the table; the last line is ``verdict`` (default: :func:`conclude` on
    ``rows`` alone, without overlap figures)."""
    head = f"{'policy':<24}{'estimator':<10}{'value':>10}{'CI low':>10}{'CI high':>10}{'ESS':>12}{'n':>10}"
    lines = [head, "-" * len(head)]
    for row in rows:
        mark = " !" if row["warnings"] else ""
        lines.append(f"{row['policy'][:23]:<24}{row['estimator']:<10}{_num(row['value']):>10}"
                     f"{_num(row['low']):>10}{_num(row['high']):>10}{row['ess']:>12.1f}"
                     f"{row['n']:>10d}{mark}")
    level = rows[0]["level"] if rows else 0.95
    lines.append(f"intervals: {level:.0%} ({', '.join(sorted({r['ci'] for r in rows}))})")
    notes = sorted({(r["policy"], r["estimator"], w) for r in rows for w in r["warnings"]})
    lines += [f"! {policy} {est}: {text.removeprefix(est + ': ')}" for policy, est, text in notes]
    lines.append((verdict or conclude(rows)).text)
    return "\n".join(lines)


def _num(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.4f}"


def write_json(result: dict, path: str) -> None:
    """``result`` as standard JSON: NaN and infinities written as ``null``."""
    with open(path, "w") as fh:
        json.dump(_finite_or_null(result), fh, indent=2, allow_nan=False)
        fh.write("\n")


def _finite_or_null(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_null(v) for v in x]
    return x


def plot(rows: list, path: str, title: str = "") -> None:
    """Value ± CI per policy, one group per estimator, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(r["policy"] for r in rows))
    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    fig, ax = plt.subplots(figsize=(3.0 + 1.3 * len(estimators), 4.5))
    width = 0.8 / max(1, len(policies))
    for i, policy in enumerate(policies):
        xs, ys, errs = [], [], [[], []]
        for j, est in enumerate(estimators):
            row = next((r for r in rows if r["policy"] == policy and r["estimator"] == est), None)
            if row is None or not math.isfinite(row["low"]):
                continue  # no interval: the table says n/a
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(row["value"])
            errs[0].append(row["value"] - row["low"])
            errs[1].append(row["high"] - row["value"])
        ax.errorbar(xs, ys, yerr=errs, fmt="o", capsize=4, label=policy)
    ax.set_xticks(range(len(estimators)), estimators)
    ax.set_ylabel("estimated value (mean reward)")
    level = rows[0]["level"] if rows else 0.95
    ax.set_title(title or f"policy value ± {level:.0%} interval")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
