"""Keras vs ONNX Runtime on the same inputs: the conversion is only accepted if they agree.

Inputs: a few seeded random images (pixels uniform in 0..255, caffe-preprocessed) and real photos loaded the
Keras way (keras.utils.load_img + resnet50.preprocess_input). Keras logits come from the converted model,
Keras probabilities from Keras' own ResNet50 (softmax head) built from the same weights file. The `features`
output and the class activation maps drawn from it are checked too (cam_parity.py), under `parity.features`.
With random weights all inputs tend to get one class, so the numbers matter more than the argmax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cam_parity import feature_parity

TOLERANCE_PROBS = 1e-4


def keras_photo_batch(paths: list[Path]) -> np.ndarray:
    """The reference preprocessing, by Keras itself."""
    import keras

    arrays = [keras.utils.img_to_array(keras.utils.load_img(str(p), target_size=(224, 224))) for p in paths]
    return keras.applications.resnet50.preprocess_input(np.stack(arrays).astype(np.float32))


def random_batch(n: int, seed: int = 1234) -> np.ndarray:
    rgb = np.random.default_rng(seed).uniform(0, 255, size=(n, 224, 224, 3)).astype(np.float32)
    return rgb[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=np.float32)


def onnx_outputs(onnx_path: Path, x: np.ndarray, threads: int = 2) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x})))


def compare(keras_logits: np.ndarray, keras_probs: np.ndarray, onnx: dict[str, np.ndarray]) -> dict[str, Any]:
    """Figures for the model card; `ok` is False when probabilities differ by more than the tolerance."""
    diff_logits = float(np.max(np.abs(keras_logits - onnx["logits"])))
    diff_probs = float(np.max(np.abs(keras_probs - onnx["probabilities"])))
    top1 = float(np.mean(keras_probs.argmax(1) == onnx["probabilities"].argmax(1)))
    return {
        "inputs": int(keras_logits.shape[0]),
        "max_abs_diff_logits": diff_logits,
        "max_abs_diff_probs": diff_probs,
        "top1_agreement": top1,
        "tolerance_probs": TOLERANCE_PROBS,
        "ok": bool(diff_probs <= TOLERANCE_PROBS),
    }


def check_parity(
    logits_model: Any, reference_model: Any, onnx_path: Path, photos: list[Path], n_random: int = 2
) -> dict[str, Any]:
    """Run both runtimes on random + photo inputs (one batch, which also exercises the dynamic batch axis)."""
    x = np.concatenate([random_batch(n_random), keras_photo_batch(photos)]) if photos else random_batch(n_random)
    keras_logits = np.asarray(logits_model.predict(x, batch_size=len(x), verbose=0))
    keras_probs = np.asarray(reference_model.predict(x, batch_size=len(x), verbose=0))
    outs = onnx_outputs(onnx_path, x)
    result = compare(keras_logits, keras_probs, outs)
    features = feature_parity(logits_model, onnx_path, x, outs, keras_logits)
    result["ok"] = bool(result["ok"] and features.pop("ok"))
    result.update(
        {
            "random_inputs": n_random,
            "photos": [p.name for p in photos],
            "keras_top1": [int(i) for i in keras_probs.argmax(1)],
            "features": features,
        }
    )
    return result
