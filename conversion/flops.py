"""Count multiply-accumulates of Conv/Gemm/MatMul in an ONNX graph (per image), for the card and benchmarks.

Import by path from other folders:  spec_from_file_location("flops", "<repo>/conversion/flops.py").
Works on fp32 and QDQ graphs (weights behind DequantizeLinear get their shape from shape inference).
Only the big ops are counted; BatchNorm/Add/Relu/pooling add well under 1 %.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import onnx
from onnx import shape_inference


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Static shape of every tensor; the dynamic batch dimension (and any symbolic one) counts as 1."""
    inferred = shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in graph.initializer}
    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    return shapes


def count_macs(model: onnx.ModelProto | str | Path) -> int:
    """Multiply-accumulates for one image (batch dimension 1)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    shapes = _shapes(model)
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w_name = node.input[3] if node.op_type == "QLinearConv" else node.input[1]
            out, weight = shapes.get(node.output[0]), shapes.get(w_name)
            if out and weight:  # weight [M, C/group, kH, kW]; every output element costs C/group*kH*kW MACs
                total += math.prod(out) * math.prod(weight[1:])
        elif node.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            a_name = node.input[0]
            out, a = shapes.get(node.output[0]), shapes.get(a_name)
            if out and a:
                trans_a = any(at.name == "transA" and at.i for at in node.attribute)
                k = a[-2] if trans_a else a[-1]
                total += math.prod(out) * k
    return total


def gflops_per_image(model: onnx.ModelProto | str | Path) -> float:
    """2 FLOPs per MAC, in units of 1e9."""
    return round(2 * count_macs(model) / 1e9, 3)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"{arg}: {gflops_per_image(arg)} GFLOP/image")
