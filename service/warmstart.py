"""Warm start: a loop's policy trained offline from a DSJSON log, as the learner would.

``cbserve train --config F --loop L --log FILE [--policy SPEC] -o model.bin`` reads a
log (cbserve's export, plain or gzip, or VW's and Personalizer's own DSJSON, whose
actions are named ``"1"``..``"K"`` by position; a ``.parquet`` export too) with replay's
readers, and learns its rewarded events in log order exactly as
:mod:`service.learner` does: :data:`BATCH` events per ``policy.learn`` call, and when
the policy refuses a batch, its events one at a time, skipping the refused ones. The
snapshot (``policy.to_bytes()``) is written to the output file.

The policy is the loop's (its ``policy`` and ``featurizer`` tables), or ``--policy``:
a JSON object (``'{"type": "linucb", "alpha": 0.5}'``) or the path of a TOML file
holding the same keys at its top level (what a loop's ``[loops.<name>.policy]`` table
holds); the loop's featurizer applies unless the spec names its own.

A multi-slot decision whose every slot is rewarded is learned slot by slot, each slot
an event as the learner learns it, after the log's single decisions (a second pass).
Events the learner would never see are counted and left out: unrewarded ones (for a
multi-slot decision: a slot unrewarded), ``_skipLearn`` ones, malformed ones, and for a
loop with fixed actions those over ids that are not the loop's (the API refuses such a
request).
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field

from bandits import BanditError, Feedback, make_policy
from bandits.dsjson_slots import slot_feedback
from replay.errors import LogError
from replay.sources import open_log

from .config import LoopConfig
from .errors import CommandError

#: Events per ``policy.learn`` call, as the learner reads them (its batch of joined entries).
BATCH = 500


@dataclass
class TrainCounts:
    """What one training pass read, learned and left out (and why)."""

    records: int = 0
    learned: int = 0
    refused: int = 0          # the policy refused to learn them (as the learner's `unlearnable`)
    foreign: int = 0          # over ids that are not the loop's fixed actions
    slots: int = 0            # of those learned, slots of multi-slot decisions
    left_out: dict = field(default_factory=dict)  # the reader's counts: unrewarded, malformed...

    def summary(self) -> str:
        """``"600 events read, 598 learned; skipped: 2 unrewarded"``."""
        skipped = {**self.left_out, "refused by the policy": self.refused,
                   "not over the loop's actions": self.foreign}
        why = ", ".join(f"{n} {reason}" for reason, n in skipped.items() if n)
        slots = f" ({self.slots} of them slots of multi-slot decisions)" if self.slots else ""
        return f"{self.records} events read, {self.learned} learned{slots}; skipped: {why or 'none'}"


def policy_spec(text: str | None, loop: LoopConfig) -> dict:
    """The policy spec ``--policy`` names (inline JSON or a TOML file), or the loop's."""
    if text is None:
        return dict(loop.policy)
    if text.lstrip().startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--policy: not a JSON object: {exc}") from exc
    else:
        try:
            with open(text, "rb") as fh:
                spec = tomllib.load(fh)
        except OSError as exc:
            raise CommandError(f"--policy: cannot read {text!r}: {exc.strerror} (give a JSON "
                               "object or a TOML file)") from exc
        except tomllib.TOMLDecodeError as exc:
            raise CommandError(f"--policy: {text} is not valid TOML: {exc}") from exc
    if not isinstance(spec, dict):
        raise CommandError("--policy: must be a JSON object or a TOML table with a 'type' key")
    return spec


def new_policy(spec: dict, loop: LoopConfig):
    """A fresh policy of ``spec`` with the loop's featurizer; errors name ``--policy``."""
    try:
        return make_policy(spec, loop.featurizer)
    except BanditError as exc:
        raise CommandError(f"--policy: {exc}") from exc


def learn_batch(policy, batch: list) -> int:
    """Learn ``batch`` as the learner does (:meth:`service.learner.LoopLearner._learn_batch`):
    all at once, or after a refusal one at a time, skipping the refused. Returns how
    many were learned."""
    try:
        policy.learn(batch)
        return len(batch)
    except BanditError:
        learned = 0
        for fb in batch:
            try:
                policy.learn([fb])
                learned += 1
            except BanditError:
                pass
        return learned


def learn_rounds(policy, rounds, counts: TrainCounts | None = None, fixed: set | None = None) -> None:
    """Learn one chunk of replay's rounds (at most :data:`BATCH`) as the learner learns
    one batch, counting in ``counts``: rounds over ids outside ``fixed`` (a loop's fixed
    actions) are left out, refused ones skipped."""
    counts = counts if counts is not None else TrainCounts()
    batch = []
    for i in range(len(rounds)):
        actions = rounds.actions[i]
        if fixed is not None and not all(a["id"] in fixed for a in actions):
            counts.foreign += 1
            continue
        try:
            batch.append(Feedback(rounds.contexts[i], actions, int(rounds.chosen[i]),
                                  float(rounds.propensities[i]), float(rounds.rewards[i])))
        except BanditError:  # as the learner's to_feedback refusals
            counts.refused += 1
    learned = learn_batch(policy, batch) if batch else 0
    counts.learned += learned
    counts.refused += len(batch) - learned


def train(policy, path: str, loop: LoopConfig) -> TrainCounts:
    """Learn the rewarded events of the log at ``path`` into ``policy``, in log order."""
    try:
        source = open_log(path)
        counts, fixed = TrainCounts(), {a["id"] for a in loop.actions} if loop.actions else None
        for rounds in source.chunks(BATCH):
            learn_rounds(policy, rounds, counts, fixed)
    except LogError as exc:
        message = str(exc)
        raise CommandError(message if message.startswith("--log") else f"--log: {message}") from exc
    report = source.report
    counts.records = report.records
    counts.left_out = {"unrewarded": report.unrewarded, "_skipLearn": report.skipped,
                       "malformed": report.malformed}
    if report.unsupported:  # multi-slot decisions: a second pass learns their slots
        counts.left_out["multi-slot with a slot unrewarded"] = learn_slates(policy, path, counts, fixed)
    return counts


def learn_slates(policy, path: str, counts: TrainCounts, fixed: set | None) -> int:
    """Learn every slot of the log's fully rewarded multi-slot decisions, as the
    learner learns them (each slot an event, :data:`BATCH` at a time), after its single
    decisions; returns how many multi-slot decisions had a slot unrewarded."""
    from replay.slate_eval import read_slates  # the multi-slot reader, when a log has slates

    try:
        source = open_log(path)
        slates = read_slates(source)
    except LogError as exc:
        raise CommandError(f"--log: {exc}") from exc
    feedback = []
    for _, _, record, _ in slates:
        if fixed is not None and not all(aid in fixed for aid, _ in record.pairs):
            counts.foreign += 1
            continue
        for j in range(len(record.slots)):
            try:
                feedback.append(slot_feedback(record, j))
            except BanditError:
                counts.refused += 1
    for start in range(0, len(feedback), BATCH):
        batch = feedback[start:start + BATCH]
        learned = learn_batch(policy, batch)
        counts.learned += learned
        counts.slots += learned
        counts.refused += len(batch) - learned
    return source.report.unrewarded


def cmd_train(args, config) -> int:
    """``cbserve train``: train, write the snapshot, print one line; 2 on bad input."""
    if args.loop not in config.loops:
        raise CommandError(f"--loop: unknown loop {args.loop!r} (configured: {', '.join(config.loops)})")
    loop = config.loops[args.loop]
    spec = policy_spec(args.policy, loop)
    policy = new_policy(spec, loop)
    counts = train(policy, args.log, loop)
    if not counts.learned:
        hint = ""
        if counts.foreign:
            hint = (f" (the loop's actions are {', '.join(a['id'] for a in loop.actions)[:200]}; "
                    "VW's own logs name actions 1..K by position)")
        raise CommandError(f"--log: no rewarded event of {args.log} could be learned: "
                           f"{counts.summary()}{hint}")
    blob = policy.to_bytes()
    try:
        with open(args.output, "wb") as fh:
            fh.write(blob)
    except OSError as exc:
        raise CommandError(f"-o/--output: cannot write {args.output}: {exc.strerror}") from exc
    print(f"trained {spec.get('type')} for loop {args.loop} from {os.path.basename(args.log)}: "
          f"{counts.summary()}; wrote {len(blob)} bytes to {args.output}")
    return 0


def add_log_args(p, loop_help: str) -> None:
    """``--loop`` and ``--log``, as the commands that learn from a log take them."""
    p.add_argument("--loop", required=True, help=loop_help)
    p.add_argument("--log", required=True,
                   help="DSJSON log (cbserve export, or VW's/Personalizer's layout; .gz read "
                        "too) or a .parquet export")


def add_train_args(t) -> None:
    """The options of ``cbserve train`` on its argparse subparser."""
    add_log_args(t, "the loop whose policy to train")
    t.add_argument("--policy", help="a policy spec instead of the loop's: a JSON object or a "
                                    "TOML file holding the keys of a loop's policy table")
    t.add_argument("-o", "--output", required=True, help="file the snapshot is written to")
