"""Class activation maps (Zhou et al., 2016) from the same run that classified the image.

ResNet50 ends in global average pooling and one dense layer, so the score of class c is the mean over cells of
Σ_k f_k(i, j) · w_k,c (plus a bias). The map is that sum per cell, without the bias:

    cell (i, j) = max(0, Σ_k f_k(i, j) · w_k,c) / the largest cell   (all zeros when the largest cell is 0)

f is the graph's `features` output (Keras' conv5_block3_out, NCHW [N, 2048, 7, 7]; conversion/export.py) and w
the kernel of the dense layer, read from the ONNX graph itself when the session is loaded (the initializer of the
MatMul/Gemm that produces `logits`), so it can never drift from the weights that computed the prediction.
Module level imports numpy only (the conversion CLI checks these maps against Keras); `onnx` only to read the
kernel, in the processes that have it (worker, conversion).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from collections.abc import Sequence

import numpy as np

FEATURE_OUTPUT = "features"
LOGITS_OUTPUT = "logits"
_PASS_THROUGH = ("Identity", "Add", "Cast")  # between the dense MatMul and `logits` (bias Add)


def class_activation_maps(features: np.ndarray, kernel_t: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """features [N, K, H, W], kernel_t [C, K] (the dense kernel transposed), classes [N] → [N, H, W] in [0, 1]."""
    n, k, h, w = features.shape
    weights = kernel_t[np.asarray(classes, dtype=np.intp)]  # [N, K]
    raw = np.matmul(weights[:, None, :], features.reshape(n, k, h * w))[:, 0]  # [N, H*W]
    np.maximum(raw, 0.0, out=raw)
    peak = raw.max(axis=1, keepdims=True)
    maps = np.divide(raw, peak, out=np.zeros_like(raw), where=peak > 0)
    return maps.reshape(n, h, w)


def as_lists(cam: np.ndarray, decimals: int = 4) -> list[list[float]]:
    """One map → rows of floats for the JSON result (rounded: 4 decimals keep 49 cells under 400 bytes)."""
    return [[round(float(v), decimals) for v in row] for row in cam]


def _constant(name: str, graph: Any, producers: dict[str, Any]) -> np.ndarray | None:
    """The value of a tensor that is an initializer, possibly behind Identity / DequantizeLinear / Transpose."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    node = producers.get(name)
    if node is None:
        return None
    if node.op_type == "Identity":
        return _constant(node.input[0], graph, producers)
    if node.op_type == "Transpose":
        value = _constant(node.input[0], graph, producers)
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        return None if value is None else np.transpose(value, perm)
    if node.op_type == "DequantizeLinear":  # a quantized kernel: (q - zero point) * scale, per axis if given
        q, scale = (_constant(i, graph, producers) for i in node.input[:2])
        zero = _constant(node.input[2], graph, producers) if len(node.input) > 2 and node.input[2] else 0
        if q is None or scale is None:
            return None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if np.ndim(scale) == 1:
            shape[axis] = -1
        zero = np.reshape(zero, shape) if np.ndim(zero) == 1 else zero
        return (q.astype(np.float32) - np.asarray(zero, np.float32)) * np.reshape(scale, shape)
    return None


def dense_kernel(model: Any, logits: str = LOGITS_OUTPUT) -> np.ndarray:
    """The [K, C] float32 kernel of the dense layer that produces `logits` (bias excluded)."""
    import onnx

    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    graph = proto.graph
    producers = {out: node for node in graph.node for out in node.output}
    node = producers.get(logits)
    while node is not None and node.op_type in _PASS_THROUGH:
        # follow the input that is not a constant (the bias of the Add is one)
        inputs = [i for i in node.input if _constant(i, graph, producers) is None]
        node = producers.get(inputs[0]) if len(inputs) == 1 else None
    if node is None or node.op_type not in ("MatMul", "Gemm"):
        raise ValueError(f"no MatMul/Gemm produces {logits!r}: cannot find the dense kernel for the class maps")
    kernel = _constant(node.input[1], graph, producers)
    if kernel is None or kernel.ndim != 2:
        raise ValueError(f"the dense layer's kernel {node.input[1]!r} is not a 2-D constant")
    if node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
        kernel = kernel.T
    return np.ascontiguousarray(kernel, dtype=np.float32)


@dataclasses.dataclass
class Explainer:
    """What the classifier needs to draw class maps: the feature output's name and the transposed kernel."""

    output: str
    kernel_t: np.ndarray  # [C, K], rows contiguous: one class's weights are one row

    @classmethod
    def for_session(cls, session: Any, model_path: str) -> Explainer | None:
        """None when the graph has no `features` output (a model converted before class maps existed)."""
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if FEATURE_OUTPUT not in outputs:
            return None
        kernel = dense_kernel(model_path)
        shape = outputs[FEATURE_OUTPUT]
        if len(shape) != 4 or shape[1] != kernel.shape[0]:
            raise ValueError(
                f"`{FEATURE_OUTPUT}` has shape {shape}; expected NCHW with {kernel.shape[0]} channels "
                "(the dense kernel's input size)"
            )
        return cls(FEATURE_OUTPUT, np.ascontiguousarray(kernel.T))

    def maps(self, features: np.ndarray, classes: Sequence[int]) -> np.ndarray:
        return class_activation_maps(np.asarray(features, np.float32), self.kernel_t, classes)
