"""A policy backed by Vowpal Wabbit's ``--cb_explore_adf`` (action-dependent features).

Contexts and actions are written in VW's text format from the same objects the
numpy policies take. Context namespaces become VW namespaces ``s<name>`` and
action namespaces ``a<name>`` (the action id goes in ``a_id``), so VW's
one-letter interaction groups are ``s`` (shared) and ``a`` (action); the default
``interactions=["sa"]`` (``-q sa``) crosses every context feature with every action
feature, without which VW's ADF reductions ignore shared features when ranking.
Exploration is whatever ``args`` selects (``--epsilon``, ``--squarecb``, ``--bag``,
``--cover``, ``--softmax``...); the pmf is VW's own.

Parsing text is VW's main cost, so each distinct action is parsed once into a VW
example and reused by later decisions (VW allows reuse for prediction; learning
parses fresh labelled text, built from each action's memoised line). Scores are VW's
pmf: ``cb_explore_adf`` exposes no per-action reward estimate.
"""
from __future__ import annotations

import os
import shlex
import tempfile
from operator import itemgetter

import numpy as np
import pylibvw
import vowpalwabbit

from .base import Policy, as_pmf
from .errors import ConfigError, VWError
from .hashing import memo_hits, shared_copy
from .inputs import check_context, describe, normalize_actions
from .params import check_bool, check_int, check_number
from .types import Decision
from .vw_text import ESCAPE, namespaces_text

#: Parsed action examples kept for reuse (per policy).
EXAMPLE_CACHE_LIMIT = 20_000
_SECOND, _THIRD = itemgetter(1), itemgetter(2)
_FORBIDDEN = {"-d", "--data", "-i", "--initial_regressor", "-f", "--final_regressor",
              "--dsjson", "--json", "-p", "--predictions", "-t", "--testonly", "--cb_adf",
              "--cb", "--cb_explore", "-q", "--quadratic", "--interactions", "--random_seed"}


class VWPolicy(Policy):
    """Contextual bandit learner and explorer from Vowpal Wabbit.

    Parameters
    ----------
    args : str
        VW options for learning and exploration, e.g. ``"--squarecb --gamma_scale 10"``
        or ``"--epsilon 0.05 --power_t 0"``. ``--cb_explore_adf`` and ``--quiet`` are
        added; data, model-file, interaction and seed options are refused here
        (interactions and seed have their own parameters).
    interactions : list of str
        VW ``-q`` groups over the namespace letters ``s`` (context) and ``a`` (action).
    action_id : bool
        Give VW the action id as a feature (per-action effects on fixed action sets).
    seed : int
        VW's ``--random_seed``.
    floor : float in [0, 1)
        The pmf is (1 − floor)·p_VW + floor/K, so every logged propensity is positive
        even with explorations that give some actions 0 (``--bag``, ``--first``,
        ``--cover``); offline evaluation needs that (default 0.001).

    References
    ----------
    Vowpal Wabbit contextual bandit reductions, https://vowpalwabbit.org.
    """

    name = "vw"

    def __init__(self, args="--epsilon 0.05", interactions=("sa",), action_id=True, seed=0,
                 floor=0.001):
        self.args = _check_args(args)
        self.interactions = _check_interactions(interactions)
        self.action_id = check_bool("action_id", action_id)
        self.seed = check_int("seed", seed, 0)
        self.floor = check_number("floor", floor, 0.0, 1.0, high_open=True)
        self._actions: dict = {}
        self._audit = None
        self._ws = self._workspace()

    def _command_line(self, seeded: bool = True) -> list:
        cmd = ["--cb_explore_adf", "--quiet"] + (["--random_seed", str(self.seed)] if seeded else [])
        for group in self.interactions:
            cmd += ["-q", group]
        return cmd + shlex.split(self.args)

    def _workspace(self, model_path=None):
        """A VW workspace; from a saved model, the model's own random seed (``--bag``
        advances it, and VW refuses a command line that disagrees with the model)."""
        cmd = self._command_line(seeded=not model_path) + (["-i", model_path] if model_path else [])
        try:
            return vowpalwabbit.Workspace(arg_list=cmd)
        except Exception as exc:  # VW raises plain RuntimeError/ValueError for bad options
            raise ConfigError("args", f"Vowpal Wabbit refused {' '.join(cmd)!r}: {exc}") from exc

    def get_params(self) -> dict:
        params = super().get_params()
        params["interactions"] = list(self.interactions)
        return params

    # -- text format ------------------------------------------------------------------
    def _namespaces(self, prefix, obj, field) -> str:
        return namespaces_text(prefix, obj, field)

    def _action_text(self, aid, feats, index) -> str:
        text = self._namespaces("a", feats, f"actions[{index}].features")
        if self.action_id:
            text += f" |a_id {aid.translate(ESCAPE)}"
        return text or "|a"

    def _action_example(self, aid, feats, index):
        """The parsed, reusable example of an action, memoised by id (checked by ==)."""
        return self._action_memo(aid, feats, index)[1]

    def _action_memos(self, pairs) -> tuple:
        """``(features, examples, lines)`` of validated pairs, each a tuple in order: one
        lookup and one ``==`` over the whole list when every action is memoised as is."""
        try:
            found = tuple(zip(*map(self._actions.__getitem__, [aid for aid, _ in pairs])))
            if found[0] == tuple([feats for _, feats in pairs]):
                return found
        except KeyError:
            pass
        return tuple(zip(*[self._action_memo(aid, feats, k) for k, (aid, feats) in enumerate(pairs)]))

    def _action_lines(self, actions, field) -> tuple:
        """Text lines of a feedback's actions; memoised actions need no other check."""
        hit = memo_hits(self._actions, actions)
        if hit is not None:
            return tuple(map(_THIRD, hit[1]))
        return self._action_memos(normalize_actions(actions, field))[2]

    def _action_memo(self, aid, feats, index) -> tuple:
        """``(features, parsed example, text line)`` of an action, memoised by id and
        checked by ``==``: decide reuses the example, learn the line."""
        hit = self._actions.get(aid)
        if hit is not None and hit[0] == feats:
            return hit
        text = self._action_text(aid, feats, index)
        if len(self._actions) >= EXAMPLE_CACHE_LIMIT:
            self._actions.clear()
        hit = self._actions[aid] = (shared_copy(feats), vowpalwabbit.Example(self._ws, text), text)
        return hit

    # -- hooks ------------------------------------------------------------------------
    def decide(self, context, actions) -> Decision:
        """As :meth:`Policy.decide`; when every action is memoised as is, the memo hit
        is their validation (as for learning)."""
        hit = memo_hits(self._actions, actions) if type(actions) is list and actions else None
        if hit is None:
            return super().decide(context, actions)
        ids, entries = hit
        scores, pmf = self._predict(check_context(context), tuple(map(_SECOND, entries)))
        return Decision(ids, pmf, scores, self.name)

    def _decide(self, context, pairs):
        return self._predict(context, self._action_memos(pairs)[1])

    def _predict(self, context, examples):
        """``(scores, pmf)``: VW's pmf (with the floor) for the context and parsed actions."""
        shared = vowpalwabbit.Example(self._ws, "shared " + (self._namespaces("s", context, "context") or "|s"))
        try:
            pmf = as_pmf(self._ws.predict([shared, *examples]))
        except RuntimeError as exc:
            raise VWError(f"Vowpal Wabbit failed to predict: {exc}") from exc
        if self.floor:
            pmf = (1.0 - self.floor) * pmf + self.floor / pmf.size
        return pmf.copy(), pmf

    def audit_workspace(self):
        """A test-only workspace of the current model with VW's ``--audit`` on, for
        :mod:`bandits.vw_audit` (made once per model state)."""
        if self._audit is None:
            fd, path = tempfile.mkstemp(suffix=".vw")
            os.close(fd)
            try:
                self._ws.save(path)
                cmd = self._command_line(seeded=False) + ["-i", path, "--audit", "-t"]
                self._audit = vowpalwabbit.Workspace(arg_list=cmd)
            finally:
                os.unlink(path)
        return self._audit

    def _drop_audit(self):
        if self._audit is not None:
            self._audit.finish()
            self._audit = None

    def _learn(self, batch):
        """Every example is written (and so validated) before VW learns any of them."""
        self._drop_audit()
        examples = []
        for i, fb in enumerate(batch):
            context = check_context(fb.context, f"feedback[{i}].context")
            lines = ["shared " + (self._namespaces("s", context, f"feedback[{i}].context") or "|s"),
                     *self._action_lines(fb.actions, f"feedback[{i}].actions")]
            k = fb.chosen + 1
            lines[k] = f"0:{-float(fb.reward)!r}:{float(fb.propensity)!r} {lines[k]}"
            examples.append(lines)
        for i, lines in enumerate(examples):
            try:
                learn_lines(self._ws, lines)
            except RuntimeError as exc:
                raise VWError(f"Vowpal Wabbit failed to learn feedback[{i}]: {exc}") from exc

    def _get_state(self):
        fd, path = tempfile.mkstemp(suffix=".vw")
        os.close(fd)
        try:
            self._ws.save(path)
            with open(path, "rb") as fh:
                model = fh.read()
        finally:
            os.unlink(path)
        return {}, {"vw_model": np.frombuffer(model, dtype=np.uint8)}

    def _set_state(self, state, arrays):
        fd, path = tempfile.mkstemp(suffix=".vw")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(arrays["vw_model"].tobytes())
            self._ws.finish()
            self._ws = self._workspace(path)
            self._drop_audit()
        finally:
            os.unlink(path)
        self._actions.clear()


def learn_lines(ws, lines) -> None:
    """VW learns one event from its text lines exactly as ``Workspace.learn(lines)`` does
    (parse, learn, return the examples to VW's pool), minus the Python wrapper object
    the binding builds around each parsed example: that wrapping cost more than VW's
    own parsing and update. Falls back to ``Workspace.learn`` if the binding lacks the
    calls. ``tests/bandits/test_vw_learn.py`` checks both give the same model."""
    if not _RAW_LEARN:
        ws.learn(lines)
        return
    examples = ws._parse("\n".join(lines).replace("\r", "").strip())  # as Workspace.parse
    pylibvw.vw.learn_multi(ws, examples)
    pylibvw.vw._finish_example_multi_ex(ws, examples)


_RAW_LEARN = all(hasattr(pylibvw.vw, name) for name in ("_parse", "learn_multi", "_finish_example_multi_ex"))


def _check_args(args):
    if not isinstance(args, str):
        raise ConfigError("args", f"must be a string of VW options, got {describe(args)}")
    try:
        tokens = shlex.split(args)
    except ValueError as exc:
        raise ConfigError("args", f"cannot split {args!r}: {exc}") from exc
    for token in tokens:
        option = token.split("=", 1)[0]
        if option in _FORBIDDEN:
            raise ConfigError("args", f"option {option} is managed by cbserve; use the "
                                      f"'interactions'/'seed' parameters or leave it out")
    return args.replace("--cb_explore_adf", "").strip()


def _check_interactions(groups):
    if isinstance(groups, str) or not all(isinstance(g, str) and g and set(g) <= {"s", "a"}
                                          for g in groups):
        raise ConfigError("interactions", f"must be a list of groups over the letters 's' "
                                          f"and 'a', got {groups!r}", ["sa", "ss", "aa", "ssa"])
    return tuple(groups)
