"""A small multilayer perceptron as ONNX bytes: how cbserve ships a numpy-trained Q-network.

The graph is ``state (batch, d) → Gemm → Relu → … → Gemm → q (batch, K)``, float32,
opset 17, so any onnxruntime ≥ 1.14 runs it. Needs the ``onnx`` package (the ``rl``
extra). Networks trained elsewhere (torch.onnx.export, tf2onnx, sklearn-onnx) serve the
same way as long as they have one (batch, d) input and one (batch, K) output.
"""
from __future__ import annotations

import numpy as np

#: Names of the graph's input and output.
INPUT, OUTPUT = "state", "q"
OPSET = 17


def mlp_onnx(layers, input_name: str = INPUT, output_name: str = OUTPUT) -> bytes:
    """Serialise ``[(W, b), ...]`` (W of shape (in, out)) with ReLU between layers."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, prev = [], [], input_name
    for i, (w, b) in enumerate(layers):
        w, b = np.asarray(w, np.float32), np.asarray(b, np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(layers) - 1
        out = output_name if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [out]))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev = out
    d_in, d_out = np.shape(layers[0][0])[0], np.shape(layers[-1][0])[1]
    graph = helper.make_graph(
        nodes, "qnetwork",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", d_in])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", d_out])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cbserve")
    model.ir_version = 8
    return model.SerializeToString()
