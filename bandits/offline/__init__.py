"""Offline RL training: Q-networks fitted on logged transitions, written as ONNX.

:func:`bandits.offline.fitted_q.fitted_q` runs fitted Q-iteration (numpy, seeded) on
(s, a, r, s', done) transitions such as ``cbserve export --transitions`` writes;
:func:`bandits.offline.onnx_mlp.mlp_onnx` turns the resulting layers into ONNX bytes,
which :class:`bandits.qnetwork.QNetworkPolicy` serves through the same ``decide`` as
every bandit. Training happens here, outside the service; serving never imports it.
"""
