"""Small ONNX policy networks for tests, written with ``onnx.helper`` (seeded weights)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp_bytes(inputs: int, hidden: Sequence[int] = (8,), actions: int = 3, *, activation: str = "Relu",
              trans_b: bool = False, matmul: bool = False, softmax: bool = False, symbolic_batch: bool = False,
              seed: int = 0, scale: float = 1.0) -> bytes:
    """A perceptron ``float32[1, inputs] -> [1, actions]``: dense layers with ``activation`` between them.

    Args:
        trans_b: Store Gemm weights as ``[out, in]`` with ``transB=1`` (PyTorch's export).
        matmul: Use ``MatMul`` + ``Add`` instead of ``Gemm``.
        softmax: End with a ``Softmax``.
        symbolic_batch: Declare the input as ``["batch", inputs]``.
    """
    rng = np.random.default_rng(seed)
    sizes = [inputs, *hidden, actions]
    nodes, weights = [], []
    current = "obs"
    for layer, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        w = rng.normal(0, scale, (fan_out, fan_in) if trans_b and not matmul else (fan_in, fan_out)).astype(np.float32)
        b = rng.normal(0, 0.1, (fan_out,)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{layer}"), numpy_helper.from_array(b, f"b{layer}")]
        out = f"z{layer}"
        if matmul:
            nodes += [helper.make_node("MatMul", [current, f"w{layer}"], [f"m{layer}"]),
                      helper.make_node("Add", [f"m{layer}", f"b{layer}"], [out])]
        else:
            nodes.append(helper.make_node("Gemm", [current, f"w{layer}", f"b{layer}"], [out],
                                          **({"transB": 1} if trans_b else {})))
        current = out
        if layer < len(sizes) - 2:
            nodes.append(helper.make_node(activation, [current], [f"a{layer}"]))
            current = f"a{layer}"
    if softmax:
        nodes.append(helper.make_node("Softmax", [current], ["probs"], axis=-1))
        current = "probs"
    nodes.append(helper.make_node("Identity", [current], ["logits"]))
    graph = helper.make_graph(
        nodes, "policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch" if symbolic_batch else 1, inputs])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, actions])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def conv_bytes() -> bytes:
    """A model with an operator the p2p evaluator refuses (Conv)."""
    w = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["obs", "w"], ["logits"])], "conv",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, 2, 2])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()
