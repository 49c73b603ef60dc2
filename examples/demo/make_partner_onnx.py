"""Builds ``partner.onnx``: the demo's browser-mode AI partner, a one-layer network that chases a fruit.

Run ``python examples/demo/make_partner_onnx.py`` to regenerate the committed file. The weights are set by
hand (no training, no download): from the observation features of ``gatherers.obs_vector`` the logits favour the
move that closes the distance to the first fruit, so sampling from them gives a plausible, slightly noisy
partner. Input ``obs`` float32[1, 13]; output ``logits`` float32[1, 5] (stay, up, down, left, right).
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

FEATURES, ACTIONS, GAIN = 13, 5, 25.0


def weights() -> list[list[float]]:
    """W[feature][action]: own x is feature 0, own y 1, first fruit x 4, first fruit y 5."""
    w = [[0.0] * ACTIONS for _ in range(FEATURES)]
    for fruit, own, toward, away in ((4, 0, 4, 3), (5, 1, 2, 1)):  # x: right/left, y: down/up
        w[fruit][toward], w[own][toward] = GAIN, -GAIN
        w[fruit][away], w[own][away] = -GAIN, GAIN
    return w


def build() -> onnx.ModelProto:
    flat = [v for row in weights() for v in row]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["obs", "W", "b"], ["logits"])],
        "fruit_chaser",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, ACTIONS])],
        [helper.make_tensor("W", TensorProto.FLOAT, [FEATURES, ACTIONS], flat),
         helper.make_tensor("b", TensorProto.FLOAT, [ACTIONS], [0.5, 0.0, 0.0, 0.0, 0.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="interactive-gym")
    model.ir_version = 8  # readable by onnxruntime-web 1.x
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    out = Path(__file__).with_name("partner.onnx")
    onnx.save(build(), out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
