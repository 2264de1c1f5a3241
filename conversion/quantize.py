"""Static INT8 quantization (QDQ, U8 activations, S8 per-channel weights) and how it compares with fp32.

Calibration images go through the worker's own preprocessing (resnet_common.preprocess, via imageprep.py). The folder
is split once, deterministically: sorted by name, every HOLDOUT_EVERY-th image is held out (at least one when the
folder has two or more), the rest calibrate. Agreement with fp32 is measured on the held-out images and their
mirror images, inputs the calibration never saw; `check_agreement` refuses a model below a minimum top-1
agreement. Speed is fp32 vs int8 side by side in the same process, interleaved so both see the same machine load.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import numpy as np
from resnet_common import cam

from cam_parity import int8_agreement
from export import FEATURE_OUTPUT
from imageprep import list_images, load_batch
from quantize_policy import HOLDOUT_EVERY, split_holdout

EXCLUDED_OPS = ("Softmax", "MatMul", "Gemm")  # classifier head in float: uint8 logits/probs are coarse


def _reader(batch: np.ndarray, input_name: str) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items: Iterator[dict[str, np.ndarray]] = iter({input_name: x[None]} for x in batch)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    return Reader()


def quantize(fp32_path: Path, int8_path: Path, calibration_dir: Path, reduce_range: bool = False) -> dict[str, Any]:
    """Write int8_path; return the settings for the card."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    images, held_out = split_holdout(list_images(calibration_dir))
    model = onnx.load(str(fp32_path))
    excluded = [n.name for n in model.graph.node if n.op_type in EXCLUDED_OPS]
    quantize_static(
        str(fp32_path),
        str(int8_path),
        _reader(load_batch(images), model.graph.input[0].name),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=reduce_range,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=excluded,
    )
    return {
        "format": "QDQ",
        "activations": "uint8",
        "weights": "int8",
        "per_channel": True,
        "reduce_range": reduce_range,
        "calibration": "MinMax",
        "calibration_images": len(images),
        "calibration_dir": str(calibration_dir),
        "calibration_files": [p.name for p in images],
        "held_out_files": [p.name for p in held_out],
        "excluded_ops": list(EXCLUDED_OPS),
    }


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def agreement(fp32_path: Path, int8_path: Path, image_dir: Path) -> dict[str, Any]:
    """top-1 agreement, logit cosine and probability differences on the held-out images and their mirror images."""
    held_out = split_holdout(list_images(image_dir))[1]
    photos = load_batch(held_out)
    x = np.concatenate([photos, photos[:, :, ::-1, :]]).astype(np.float32)
    outs = []
    for path in (fp32_path, int8_path):
        session = _session(path, 2)
        names = [o.name for o in session.get_outputs()]  # logits, probabilities, features
        outs.append(dict(zip(names, session.run(names, {"input": x}))))
    a, b = outs[0]["logits"], outs[1]["logits"]
    cosine = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    found = {
        "images": int(len(x)),
        "inputs": f"held-out images (every {HOLDOUT_EVERY}th by name, not calibrated on) + their mirror images",
        "held_out": [p.name for p in held_out],
        "top1_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
        "logit_cosine_mean": float(cosine.mean()),
        "logit_cosine_min": float(cosine.min()),
        "max_abs_diff_probs": float(np.max(np.abs(outs[0]["probabilities"] - outs[1]["probabilities"]))),
    }
    if FEATURE_OUTPUT in outs[0] and FEATURE_OUTPUT in outs[1]:  # the int8 graph's own kernel draws its maps
        found["features"] = int8_agreement(outs[0], outs[1], cam.dense_kernel(int8_path))
    return found


def speed(
    fp32_path: Path, int8_path: Path, image_dir: Path, threads: int = 2, batch: int = 8, rounds: int = 5
) -> dict[str, Any]:
    """Images/s of both variants, measured alternately (median of `rounds` runs each, after a warm-up)."""
    photos = load_batch(list_images(image_dir))
    x = np.resize(photos, (batch, *photos.shape[1:])).astype(np.float32)
    sessions = {"fp32": _session(fp32_path, threads), "int8": _session(int8_path, threads)}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():
        session.run(["probabilities"], {"input": x})  # warm-up: allocations, kernel selection
    for _ in range(rounds):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(["probabilities"], {"input": x})
            times[name].append(time.perf_counter() - start)
    fp32 = batch / float(np.median(times["fp32"]))
    int8 = batch / float(np.median(times["int8"]))
    return {
        "fp32_img_s": round(fp32, 2),
        "int8_img_s": round(int8, 2),
        "ratio": round(int8 / fp32, 3),
        "threads": threads,
        "batch": batch,
        "rounds": rounds,
        "statistic": "median",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }  # other work on the machine lowers both figures
