"""MAC counting from the ONNX graph: exact on a tiny graph, 7.72 GFLOP on the converted ResNet50."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flops import count_macs, gflops_per_image


def tiny_model() -> onnx.ModelProto:
    """Conv 3->8, 3x3, stride 1, pads 1 on 1x3x10x10 (batch dynamic) then Flatten and Gemm 800->5."""
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    g = numpy_helper.from_array(np.zeros((800, 5), np.float32), "g")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        [w, g],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_tiny_graph_exact():
    conv = 8 * 10 * 10 * (3 * 3 * 3)
    gemm = 800 * 5
    assert count_macs(tiny_model()) == conv + gemm


def test_resnet50_flops(random0_dir):
    assert abs(gflops_per_image(random0_dir / "resnet50.onnx") - 7.72) < 0.01
