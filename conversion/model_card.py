"""model_card.json: what was converted, from which weights, with which tools, and how well it matches Keras.

The card is written last (atomically) and removed first, so a card on disk always describes the ONNX files
beside it; card_status.py relies on that to decide whether `make run` must convert again.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from resnet_common.repository_layout import CARD_NAME

from atomic import atomic_write_json
from export import FEATURE_LAYER, FEATURE_LAYOUT, FEATURE_OUTPUT, OUTPUT_NAMES
from weights import WeightsSpec

FP32_NAME = "resnet50.onnx"
INT8_NAME = "resnet50.int8.onnx"

PREPROCESSING = {
    "load": "keras.utils.load_img(path, target_size=(224, 224)) — Pillow, NEAREST, RGB",
    "normalize": "keras.applications.resnet50.preprocess_input (caffe: RGB→BGR, minus ImageNet mean)",
    "mean_bgr": [103.939, 116.779, 123.68],
    "exif_transpose": True,
}


FEATURE_MAP = {  # what the worker's class activation maps read (resnet_common.cam); card_status requires it
    "output": FEATURE_OUTPUT,
    "keras_layer": FEATURE_LAYER,
    "layout": FEATURE_LAYOUT,
    "shape": [None, 2048, 7, 7],
    "dense_kernel": "read by the worker from the ONNX graph: the initializer of the MatMul that produces logits",
}


def versions(opset: int) -> dict[str, Any]:
    found = {
        name: metadata.version(dist)
        for name, dist in [
            ("keras", "keras"),
            ("tensorflow", "tensorflow-cpu"),
            ("tf2onnx", "tf2onnx"),
            ("onnx", "onnx"),
            ("onnxruntime", "onnxruntime"),
            ("numpy", "numpy"),
        ]
    }
    return {**found, "python": platform.python_version(), "opset": opset}


def weights_entry(spec: WeightsSpec, weights_path: Path, sha256: str, model_dir: Path) -> dict[str, Any]:
    """Paths inside model_dir are stored relative to it, so the folder can move (e.g. into a container)."""
    try:
        shown = str(weights_path.resolve().relative_to(model_dir.resolve()))
    except ValueError:
        shown = str(weights_path.resolve())
    return {"request": spec.request, "source": spec.source, "seed": spec.seed, "path": shown, "sha256": sha256}


def variant_entry(path: Path, sha256: str, gflops: float | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": path.name, "sha256": sha256, "bytes": path.stat().st_size}
    if gflops is not None:
        entry["gflops_per_image"] = gflops
    entry.update(extra)
    return entry


def build_card(
    *,
    serve: str,
    labels: dict[str, Any],
    variants: dict[str, Any],
    weights: dict[str, Any],
    opset: int,
    parity: dict[str, Any],
    conversion_s: float,
) -> dict[str, Any]:
    return {
        "model": "ResNet50",
        "serve": serve,
        "variants": variants,
        "input": {"name": "input", "layout": "NHWC", "shape": [None, 224, 224, 3], "dtype": "float32"},
        "outputs": list(OUTPUT_NAMES),
        "feature_map": FEATURE_MAP,
        "preprocessing": PREPROCESSING,
        **labels,  # class_names.write_class_index: the file, the number of classes, the names' digest
        "weights": weights,
        "versions": versions(opset),
        "parity": parity,
        "conversion_seconds": round(conversion_s, 1),
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }


def read_card(model_dir: Path) -> dict[str, Any] | None:
    """The card, or None when it is missing or unreadable (both mean: convert again)."""
    try:
        return json.loads((model_dir / CARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_card(model_dir: Path, card: dict[str, Any]) -> Path:
    dest = model_dir / CARD_NAME
    atomic_write_json(dest, card)
    return dest


def remove_card(model_dir: Path) -> None:
    (model_dir / CARD_NAME).unlink(missing_ok=True)
