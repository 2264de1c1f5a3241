"""A tiny stand-in for the converted ResNet50, built with onnx.helper in milliseconds.

Same contract as conversion/export.py's graph: input "input" float32 [N, 224, 224, 3] (NHWC, preprocessed),
outputs "logits" and "probabilities" [N, 1000]. One strided 3×3 convolution (8 filters), global average pooling and
a 8×1000 matrix, seeded weights: predictions depend on the image, and the FLOPs are easy to count by hand
(`TINY_GFLOPS`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from resnet_common.repository_layout import CARD_NAME

TINY_GFLOPS = round(2 * (8 * 112 * 112 * 27 + 8 * 1000) / 1e9, 3)  # conv MACs + matmul MACs, ×2


def write_tiny_model(path: str | os.PathLike, seed: int = 0) -> None:
    """`seed` picks the weights: two seeds give two models that answer differently (versions in tests)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.05).astype(np.float32), "W")
    dense = numpy_helper.from_array((rng.standard_normal((8, 1000)) * 0.05).astype(np.float32), "G")
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "W"], ["conv"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("MatMul", ["features", "G"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 224, 224, 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 1000]) for name in ("logits", "probabilities")],
        [conv, dense],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_card(model_dir: str | os.PathLike, file: str, model: str) -> None:
    """A model card serving `file` as the fp32 variant, in the shape conversion/model_card.py writes."""
    model_dir = Path(model_dir)
    card = {
        "model": model,
        "serve": "fp32",
        "variants": {"fp32": {"file": file, "bytes": (model_dir / file).stat().st_size}},
        "input": {"name": "input", "layout": "NHWC", "shape": [None, 224, 224, 3], "dtype": "float32"},
        "outputs": ["logits", "probabilities"],
        "labels": "imagenet_class_index.json",
    }
    (model_dir / CARD_NAME).write_text(json.dumps(card), encoding="utf-8")


def make_tiny_model_dir(model_dir: str | os.PathLike, file: str = "tiny.onnx", seed: int = 0) -> Path:
    """A model folder (graph + card) the worker can serve; returns it."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    write_tiny_model(model_dir / file, seed)
    write_card(model_dir, file, "Tiny")
    return model_dir
