"""``cbserve evaluate-features``: which namespaces of a loop's log earn their keep.

``cbserve evaluate-features --config F --loop L --log FILE [--holdout 0.3] [--png out.png]
[--ci normal|bootstrap] [--seed S]`` reads the log as ``cbserve train`` does (:mod:`service.warmstart`), trains
the loop's policy (its ``policy`` and ``featurizer`` tables) on the first 1 − holdout
of the rewarded events once with every namespace and once without each context and
each action namespace, each exactly as ``cbserve train`` learns (:data:`BATCH` events
per ``learn`` call, a refused batch learned one event at a time), and evaluates them
on the held-out rest (:func:`replay.features.evaluate_features`).

Output: a progress bar on stderr (one step per trained policy), a table on stdout,
the overlap warning on stderr when the held-out importance weights' ESS is too small
to trust the table, a bar chart with ``--png`` (matplotlib, of the ``replay`` extra),
and last one JSON line with every figure. Bad input: one line naming the option, exit 2.
"""
from __future__ import annotations

import json
import math
import sys

from replay.errors import LogError, ReplayError
from replay.features import BASELINE, evaluate_features, find_namespaces
from replay.logs import concat
from replay.sources import open_log

from .errors import CommandError
from .warmstart import BATCH, add_log_args, learn_rounds, new_policy, policy_spec

#: Width of the namespace column of the table.
NAME_WIDTH = 24


def read_rounds(path: str, loop) -> tuple:
    """``(rounds, report, foreign)``: the log's rewarded rounds in log order, the reader's
    report, and how many were left out for naming ids that are not the loop's fixed
    actions (the API refuses them, so the learner never sees them)."""
    try:
        source = open_log(path)
        parts = list(source.chunks(BATCH))
    except LogError as exc:
        message = str(exc)
        raise CommandError(message if message.startswith("--log") else f"--log: {message}") from exc
    rounds = concat(parts)
    foreign = 0
    if loop.actions:
        fixed = {a["id"] for a in loop.actions}
        keep = [i for i, actions in enumerate(rounds.actions) if all(a["id"] in fixed for a in actions)]
        foreign = len(rounds) - len(keep)
        rounds = rounds.take(keep)
    return rounds, source.report, foreign


def trainer(spec: dict, loop):
    """``fit(rounds) -> policy``: a fresh policy of ``spec`` with the loop's featurizer,
    learning ``rounds`` in log order as ``cbserve train`` does."""
    def fit(rounds):
        policy = new_policy(spec, loop)
        for start in range(0, len(rounds), BATCH):
            learn_rounds(policy, rounds.slice(start, start + BATCH))
        return policy
    return fit


def progress_bar(total: int):
    """``(step(label), close())``: tqdm on stderr when installed, else a plain line;
    nothing is shown before the first step."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    state = {"bar": None, "done": 0}

    def step(label):
        state["done"] += 1
        if tqdm is None:
            print(f"\rtrained {state['done']}/{total} ({label})", end="", file=sys.stderr, flush=True)
            return
        if state["bar"] is None:
            state["bar"] = tqdm(total=total, desc="training", unit="policy", file=sys.stderr)
        state["bar"].set_postfix_str(label)
        state["bar"].update(1)

    def close():
        if state["bar"] is not None:
            state["bar"].close()
        elif state["done"]:
            print(file=sys.stderr)
    return step, close


def _interval(low, high) -> str:
    return "n/a" if low is None or high is None else f"[{low:+.4f}, {high:+.4f}]"


def table(result) -> str:
    """The readable table: the baseline, then one line per namespace by value carried."""
    pct = f"{result.level:.0%}"
    base = result.baseline
    lines = [f"trained on {result.train_rounds} rounds, evaluated on {result.holdout_rounds} "
             f"held-out rounds; loss = value(baseline) - value(without), DR, paired per round, "
             f"{pct} intervals",
             f"{'namespace':<{NAME_WIDTH}} {'DR':>8} {'SNIPS':>8} {'ESS':>8} "
             f"{'loss if dropped':>16} {pct + ' CI':>20}  verdict",
             "-" * (NAME_WIDTH + 90),
             f"{BASELINE:<{NAME_WIDTH}} {base.dr['value']:>8.4f} {base.snips['value']:>8.4f} "
             f"{base.ess:>8.1f} {'':>16} {'':>20}  every namespace"]
    if result.warning:
        lines.append(f"NOT TRUSTED: overlap too small (ESS {base.ess:.1f} of "
                     f"{result.holdout_rounds} held-out rounds); no intervals, flags or ranks")
    for row in result.rows:
        if not row.trusted:
            verdict = "n/a (overlap too small)"
        elif row.candidate_to_drop:
            verdict = f"#{row.rank}: candidate to drop" + (
                " (decides as the baseline on every round)" if row.same_decisions else "")
        else:
            verdict = f"#{row.rank}: carries value"
        lines.append(f"{row.namespace:<{NAME_WIDTH}} {row.policy.dr['value']:>8.4f} "
                     f"{row.policy.snips['value']:>8.4f} {row.policy.ess:>8.1f} "
                     f"{row.loss:>+16.4f} {_interval(row.low, row.high):>20}  {verdict}")
    return "\n".join(lines)


def plot(result, path: str) -> str | None:
    """A bar chart of each namespace's loss with its interval; None when written, else why not."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "--png: matplotlib is not installed (pip install 'cbserve[replay]'); no chart written"
    rows = result.rows[::-1]
    losses = [r.loss for r in rows]
    errors = [[r.loss - r.low if r.trusted else 0.0 for r in rows],
              [r.high - r.loss if r.trusted else 0.0 for r in rows]]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * len(rows)))
    ax.barh([r.namespace for r in rows], losses, xerr=errors, capsize=4,
            color=["#4c78a8" if r.trusted and not r.candidate_to_drop else "#bbbbbb" for r in rows])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"value lost when dropped (DR, {result.level:.0%} paired interval)")
    ax.set_title("overlap too small: not to be trusted" if result.warning else
                 "value carried by each namespace (grey: candidate to drop)", fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise CommandError(f"--png: cannot write {path}: {exc.strerror}") from exc
    finally:
        plt.close(fig)
    return None


def _finite(obj):
    """``obj`` with NaN and infinities as None, so the line is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def cmd_evaluate_features(args, config) -> int:
    """``cbserve evaluate-features``: train, evaluate, print; 2 on bad input."""
    if args.loop not in config.loops:
        raise CommandError(f"--loop: unknown loop {args.loop!r} (configured: {', '.join(config.loops)})")
    if not 0.0 < args.holdout < 1.0:
        raise CommandError(f"--holdout: must be in (0, 1), got {args.holdout}")
    loop = config.loops[args.loop]
    rounds, report, foreign = read_rounds(args.log, loop)
    if len(rounds) < 2:
        raise CommandError(f"--log: {args.log} holds {len(rounds)} usable rewarded events "
                           f"(at least 2 needed): {report.summary()}")
    step, close = progress_bar(1 + len(find_namespaces(rounds)))
    try:
        result = evaluate_features(rounds, trainer(policy_spec(None, loop), loop),
                                   holdout=args.holdout, ci=args.ci, seed=args.seed,
                                   progress=step)
    except ReplayError as exc:
        message = str(exc)
        raise CommandError(f"--{message}" if message.startswith("holdout:") else f"--log: {message}") \
            from exc
    finally:
        close()
    print(table(result))
    if result.warning:
        print(f"cbserve: warning: {result.warning}", file=sys.stderr)
    skipped = plot(result, args.png) if args.png else None
    if skipped:
        print(f"cbserve: {skipped}", file=sys.stderr)
    print(json.dumps(_finite({"loop": args.loop, "log": args.log, "policy": loop.policy,
                              "foreign": foreign, "read": report.to_dict(),
                              "png": args.png if args.png and not skipped else None,
                              **result.to_dict()}), allow_nan=False))
    return 0


def add_features_args(p) -> None:
    """The options of ``cbserve evaluate-features`` on its argparse subparser."""
    add_log_args(p, "the loop whose policy and featurizer to train")
    p.add_argument("--holdout", type=float, default=0.3,
                   help="share of the rewarded events, the latest, evaluated on (in (0, 1))")
    p.add_argument("--png", help="bar chart of each namespace's loss with its interval")
    p.add_argument("--ci", choices=("normal", "bootstrap"), default="normal",
                   help="interval method of the estimates and of the paired losses")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (--ci bootstrap)")
