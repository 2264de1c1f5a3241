"""INT8 static QDQ quantization of the session's fp32 model and its agreement figures."""

from collections import Counter

import numpy as np
import onnx

from helpers import PHOTOS
from parity import compare
from quantize import agreement, quantize


def test_int8_qdq_model_agrees_with_fp32(random0_dir, tmp_path):
    int8 = tmp_path / "resnet50.int8.onnx"
    settings = quantize(random0_dir / "resnet50.onnx", int8, PHOTOS)
    assert settings["format"] == "QDQ" and settings["calibration_images"] >= 3
    graph = onnx.load(str(int8)).graph
    ops = Counter(n.op_type for n in graph.node)
    assert ops["QuantizeLinear"] > 50 and ops["DequantizeLinear"] > 50 and ops["Conv"] == 53
    softmax = next(n for n in graph.node if n.op_type == "Softmax")
    assert not softmax.input[0].endswith("DequantizeLinear")  # probabilities stay float
    agree = agreement(random0_dir / "resnet50.onnx", int8, PHOTOS)
    assert agree["images"] == 2 * len(settings["held_out_files"]) and agree["held_out"] == settings["held_out_files"]
    assert not set(settings["held_out_files"]) & set(settings["calibration_files"])
    assert agree["top1_agreement"] == 1.0 and agree["logit_cosine_min"] > 0.999
    assert agree["max_abs_diff_probs"] < 0.05
    features = agree["features"]  # the int8 feature map and class maps against fp32's
    assert (
        features["features_cosine_min"] > 0.98 and 0 < features["features_max_abs_diff"] < features["features_max_abs"]
    )
    assert 0 <= features["cam_mean_abs_diff"] <= features["cam_max_abs_diff"] < 0.5


def test_parity_compare_flags_differences():
    logits = np.zeros((2, 1000), np.float32)
    probs = np.full((2, 1000), 1e-3, np.float32)
    same = compare(logits, probs, {"logits": logits, "probabilities": probs})
    assert same["ok"] and same["max_abs_diff_probs"] == 0.0 and same["top1_agreement"] == 1.0
    moved = probs.copy()
    moved[0, 5] += 2e-4
    off = compare(logits, probs, {"logits": logits, "probabilities": moved})
    assert not off["ok"] and off["top1_agreement"] == 0.5 and abs(off["max_abs_diff_probs"] - 2e-4) < 1e-6
