"""QNetworkPolicy: act from a Q-network in ONNX format, ε-greedy on its Q-values.

The escalation path from bandits to sequential RL: the network is trained offline on
exported transitions (``scripts/train_q_policy.py`` does fitted Q-iteration in numpy;
any ONNX exporter works) and served through the same ``decide`` call as every bandit.
Its input is the state vector of :class:`bandits.state.StateEncoder` (declared by the
``state`` parameter), its output one Q-value per entry of ``action_ids``.

The pmf is :func:`bandits.exploration.greedy_pmf` of the Q-values: the argmax gets
exactly 1−ε+ε/K and every other action ε/K, so each logged decision keeps a positive
propensity and the policy can itself be evaluated (and improved) offline from its logs.

``learn`` does nothing: a Q-network changes by retraining offline and deploying the new
file, not online. Snapshots carry the ONNX bytes themselves, so a worker that loads a
published version needs no access to the original file. Requires ``onnxruntime`` (the
``rl`` extra). A wrong path, a network whose input width is not the state dimension,
or whose output is not one value per action fails at construction (service start-up)
with a :class:`ConfigError` naming ``model``.
"""
from __future__ import annotations

import numpy as np

from .base import Policy, type_name
from .errors import ConfigError, FeatureError, SnapshotError
from .exploration import greedy_pmf
from .params import check_number
from .snapshot import unpack
from .state import StateEncoder


class QNetworkPolicy(Policy):
    """ε-greedy on Q(state, ·) from an ONNX network.

    Parameters
    ----------
    model : str
        Path of the ``.onnx`` file: one float input (batch, d), one output (batch, K).
    action_ids : list of str
        The action of each output, in order (the service fills in a loop's fixed actions).
    state : mapping
        The state encoding (:class:`bandits.state.StateEncoder`).
    epsilon : float in (0, 1]
        Exploration: every action keeps at least ε/K.
    """

    name = "qnetwork"
    #: Acts on the session state: the service requires a ``session`` table for it.
    sequential = True

    def __init__(self, model, action_ids=None, state=None, epsilon=0.05):
        self._setup(model, action_ids, state, epsilon, None)

    def _setup(self, model, action_ids, state, epsilon, blob):
        if not isinstance(model, str) or not model:
            raise ConfigError("model", f"must be the path of an .onnx file, got {model!r}")
        if (not isinstance(action_ids, list) or not action_ids
                or not all(isinstance(a, str) and a for a in action_ids)
                or len(set(action_ids)) != len(action_ids)):
            raise ConfigError("action_ids", "required: the distinct action id of each network "
                                            "output (or give the loop fixed actions)")
        self.model, self.action_ids = model, list(action_ids)
        self.epsilon = check_number("epsilon", epsilon, 0.0, 1.0, low_open=True)
        self.encoder = StateEncoder(state, self.action_ids)
        self.state = self.encoder.spec
        self._index = {aid: i for i, aid in enumerate(self.action_ids)}
        if blob is None:
            try:
                with open(model, "rb") as fh:
                    blob = fh.read()
            except OSError as exc:
                raise ConfigError("model", f"cannot read {model!r}: {exc.strerror}") from exc
        self._blob = blob
        self._session, self._input = _inference_session(blob, model, self.encoder.dim,
                                                        len(self.action_ids))

    def q_values(self, X: np.ndarray) -> np.ndarray:
        """Q-values (n, K) for state vectors (n, d)."""
        out = self._session.run(None, {self._input: np.asarray(X, np.float32)})[0]
        return out.astype(np.float64)

    def _decide(self, context, pairs):
        try:
            idx = [self._index[aid] for aid, _ in pairs]
        except KeyError as exc:
            raise FeatureError("actions", f"unknown action {exc.args[0]!r} (the network scores "
                                          f"{', '.join(self.action_ids)})") from None
        q = self.q_values(self.encoder.encode(context)[None, :])[0][idx]
        return q, greedy_pmf(q, self.epsilon)

    def _learn(self, batch):
        """Nothing: the network is retrained offline (see the module docstring)."""

    def _get_state(self):
        return {}, {"onnx": np.frombuffer(self._blob, dtype=np.uint8)}

    def _set_state(self, state, arrays):
        raise NotImplementedError  # from_bytes rebuilds from the embedded network

    @classmethod
    def from_bytes(cls, data: bytes) -> "QNetworkPolicy":
        meta, arrays = unpack(data)
        if meta["type"] != type_name(cls):
            raise SnapshotError(f"snapshot holds a {meta['type']!r} policy, not {type_name(cls)!r}")
        policy = cls.__new__(cls)
        try:
            p = meta["params"]
            policy._setup(p["model"], p["action_ids"], p["state"], p["epsilon"],
                          arrays["onnx"].tobytes())
        except (KeyError, ConfigError) as exc:
            raise SnapshotError(f"corrupt qnetwork snapshot: {exc}") from exc
        return policy


def _inference_session(blob: bytes, path: str, dim: int, k: int):
    """An onnxruntime session, checked to map (1, dim) states to (1, k) Q-values."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError("model", "onnxruntime is not installed: pip install 'cbserve[rl]'") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # tiny nets: no pool
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise ConfigError("model", f"{path!r} is not a loadable ONNX model: {exc}") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ConfigError("model", f"{path!r} must have one input and one output, has "
                                   f"{len(inputs)} and {len(outputs)}")
    shape = inputs[0].shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != dim):
        raise ConfigError("model", f"{path!r} takes input of shape {shape}; the state "
                                   f"encoding gives (batch, {dim})")
    try:
        out = session.run(None, {inputs[0].name: np.zeros((1, dim), np.float32)})[0]
    except Exception as exc:  # noqa: BLE001
        raise ConfigError("model", f"{path!r} fails on a (1, {dim}) state: {exc}") from exc
    if out.shape != (1, k):
        raise ConfigError("model", f"{path!r} outputs shape {tuple(out.shape)} for one state; "
                                   f"expected (1, {k}): one Q-value per action")
    return session, inputs[0].name
