"""The `features` output (Keras' conv5_block3_out) and the class activation maps the worker draws from it,
checked against Keras at conversion (fp32) and against fp32 for the INT8 variant; the figures go into the card.

The worker's map code (resnet_common.cam, the package the services share): one implementation, checked here
against an independent NHWC reference written with Keras' own tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from resnet_common import cam

from export import FEATURE_LAYER, FEATURE_LAYOUT, FEATURE_OUTPUT

TOLERANCE_FEATURES_REL = 1e-4  # max |ONNX - Keras| over the largest |Keras feature|
TOLERANCE_CAM = 1e-3  # per cell, maps normalised to [0, 1] (the bar)


def keras_features(logits_model: Any, x: np.ndarray) -> np.ndarray:
    """Keras' conv5_block3_out for x, NHWC [N, 7, 7, 2048]."""
    import keras

    sub = keras.Model(logits_model.inputs, logits_model.get_layer(FEATURE_LAYER).output)
    return np.asarray(sub.predict(x, batch_size=len(x), verbose=0))


def reference_cams(features_nhwc: np.ndarray, kernel: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The issue's formula, spelled out in float64: relu(Σ_k f_k(i,j) w_k,c), divided by the largest cell."""
    raw = np.einsum("nhwk,kn->nhw", features_nhwc.astype(np.float64), kernel.astype(np.float64)[:, classes])
    raw = np.maximum(raw, 0.0)
    peak = raw.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, raw / np.where(peak > 0, peak, 1.0), 0.0)


def to_nhwc(features: np.ndarray) -> np.ndarray:
    return features.transpose(0, 2, 3, 1) if FEATURE_LAYOUT == "NCHW" else features


def feature_parity(
    logits_model: Any, onnx_path: Path, x: np.ndarray, onnx_outs: dict[str, np.ndarray], keras_logits: np.ndarray
) -> dict[str, Any]:
    """ONNX features vs Keras', and the worker's maps (kernel read from the graph) vs the Keras reference."""
    ref = keras_features(logits_model, x)
    got = to_nhwc(onnx_outs[FEATURE_OUTPUT])
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(ref - got)))
    kernel_keras = np.asarray(logits_model.get_layer("predictions").kernel)
    kernel_graph = cam.dense_kernel(onnx_path)
    classes = keras_logits.argmax(1)
    expected = reference_cams(ref, kernel_keras, classes)
    maps = cam.class_activation_maps(
        onnx_outs[FEATURE_OUTPUT], np.ascontiguousarray(kernel_graph.T), onnx_outs["logits"].argmax(1)
    )
    cam_diff = float(np.max(np.abs(expected - maps)))
    return {
        "feature_layer": FEATURE_LAYER,
        "max_abs_diff_features": diff,
        "features_max_abs": scale,
        "max_rel_diff_features": diff / scale if scale else diff,
        "tolerance_features_rel": TOLERANCE_FEATURES_REL,
        "dense_kernel_max_abs_diff": float(np.max(np.abs(kernel_graph - kernel_keras))),
        "max_abs_diff_cam": cam_diff,
        "tolerance_cam": TOLERANCE_CAM,
        "cam_nonzero_cells_min": int((expected > 0).sum(axis=(1, 2)).min()),
        "ok": bool(
            (diff <= TOLERANCE_FEATURES_REL * max(scale, 1e-12))
            and cam_diff <= TOLERANCE_CAM
            and np.array_equal(kernel_graph, kernel_keras)
        ),
    }


def int8_agreement(fp32: dict[str, np.ndarray], int8: dict[str, np.ndarray], kernel: np.ndarray) -> dict[str, Any]:
    """The INT8 graph's features and maps against fp32 on the same inputs (maps for each variant's own top-1)."""
    a, b = fp32[FEATURE_OUTPUT], int8[FEATURE_OUTPUT]
    flat_a, flat_b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    cosine = np.sum(flat_a * flat_b, 1) / (np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1))
    kernel_t = np.ascontiguousarray(kernel.T)
    maps_a = cam.class_activation_maps(a, kernel_t, fp32["logits"].argmax(1))
    maps_b = cam.class_activation_maps(b, kernel_t, int8["logits"].argmax(1))
    peak_a = maps_a.reshape(len(a), -1).argmax(1)
    peak_b = maps_b.reshape(len(b), -1).argmax(1)
    return {
        "features_max_abs_diff": float(np.max(np.abs(a - b))),
        "features_max_abs": float(np.max(np.abs(a))),
        "features_cosine_min": float(cosine.min()),
        "cam_max_abs_diff": float(np.max(np.abs(maps_a - maps_b))),
        "cam_mean_abs_diff": float(np.mean(np.abs(maps_a - maps_b))),
        "cam_peak_cell_agreement": float(np.mean(peak_a == peak_b)),
    }
