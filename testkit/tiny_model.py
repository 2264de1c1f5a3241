"""A tiny stand-in for the converted ResNet50, built with onnx.helper in milliseconds.

Same contract as conversion/export.py's graph: input "input" float32 [N, 224, 224, 3] (NHWC, preprocessed),
outputs "logits" and "probabilities" [N, 1000] (or a head of other `classes`). One strided 3×3 convolution (8
filters), global average pooling and an 8×1000 matrix, seeded weights: predictions depend on the image, and the
FLOPs are easy to count by hand (`TINY_GFLOPS`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from resnet_common.repository_layout import CARD_NAME

TINY_GFLOPS = round(2 * (8 * 112 * 112 * 27 + 8 * 1000) / 1e9, 3)  # conv MACs + matmul MACs, ×2


def write_tiny_model(path: str | os.PathLike, seed: int = 0, classes: int = 1000) -> None:
    """`seed` picks the weights: two seeds give two models that answer differently (versions in tests)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.05).astype(np.float32), "W")
    dense = numpy_helper.from_array((rng.standard_normal((8, classes)) * 0.05).astype(np.float32), "G")
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
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", classes])
            for name in ("logits", "probabilities")
        ],
        [conv, dense],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_card(model_dir: str | os.PathLike, file: str, model: str, labels: str = "imagenet_class_index.json") -> None:
    """A model card serving `file` as the fp32 variant, in the shape conversion/model_card.py writes; `labels` names
    the class index (absent from the folder: the worker falls back to LABELS_FILE)."""
    model_dir = Path(model_dir)
    card = {
        "model": model,
        "serve": "fp32",
        "variants": {"fp32": {"file": file, "bytes": (model_dir / file).stat().st_size}},
        "input": {"name": "input", "layout": "NHWC", "shape": [None, 224, 224, 3], "dtype": "float32"},
        "outputs": ["logits", "probabilities"],
        "labels": labels,
    }
    (model_dir / CARD_NAME).write_text(json.dumps(card), encoding="utf-8")


def make_tiny_model_dir(
    model_dir: str | os.PathLike,
    file: str = "tiny.onnx",
    seed: int = 0,
    classes: int = 1000,
    names: list[str] | None = None,
) -> Path:
    """A model folder (graph + card) the worker can serve; returns it. `names`: a class index of its own in the
    folder (class_index.json, as a conversion with LABELS writes), else the card names one the folder lacks."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    write_tiny_model(model_dir / file, seed, classes)
    if names is None:
        write_card(model_dir, file, "Tiny")
        return model_dir
    index = {str(i): [str(i), name] for i, name in enumerate(names)}
    (model_dir / "class_index.json").write_text(json.dumps(index), encoding="utf-8")
    write_card(model_dir, file, "Tiny", labels="class_index.json")
    return model_dir
