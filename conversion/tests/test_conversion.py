"""Real conversions: the random seed-0 model of the session, and one from a .weights.h5 path."""

import json

import numpy as np
import pytest

from helpers import run_cli
from weights import sha256_file


@pytest.fixture(scope="module")
def card(random0_dir) -> dict:
    return json.loads((random0_dir / "model_card.json").read_text())


def test_card_describes_the_files(random0_dir, card):
    fp32 = card["variants"]["fp32"]
    assert card["serve"] == "fp32" and card["model"] == "ResNet50"
    assert fp32["sha256"] == sha256_file(random0_dir / fp32["file"])
    assert fp32["bytes"] == (random0_dir / fp32["file"]).stat().st_size
    w = card["weights"]
    assert (w["source"], w["seed"], w["path"]) == ("random", 0, "resnet50.random-seed0.weights.h5")
    assert w["sha256"] == sha256_file(random0_dir / w["path"])
    assert card["versions"]["tf2onnx"] == "1.17.0" and card["versions"]["opset"] == 17
    assert card["input"] == {"name": "input", "layout": "NHWC", "shape": [None, 224, 224, 3], "dtype": "float32"}
    assert card["outputs"] == ["logits", "probabilities", "features"]
    assert card["feature_map"]["keras_layer"] == "conv5_block3_out" and card["feature_map"]["layout"] == "NCHW"


def test_parity_figures_in_card(card):
    parity = card["parity"]
    assert parity["inputs"] >= 4 and parity["photos"]
    assert parity["max_abs_diff_probs"] <= 1e-4 and parity["tolerance_probs"] == 1e-4
    assert parity["max_abs_diff_logits"] < 1e-3
    assert parity["top1_agreement"] == 1.0
    features = parity["features"]  # conv5_block3_out and the class maps drawn from it, against Keras
    assert features["max_rel_diff_features"] <= 1e-4 and features["features_max_abs"] > 0
    assert features["max_abs_diff_cam"] <= 1e-3 and features["dense_kernel_max_abs_diff"] == 0.0


def test_onnx_signature_and_dynamic_batch(random0_dir):
    import onnxruntime as ort

    session = ort.InferenceSession(str(random0_dir / "resnet50.onnx"), providers=["CPUExecutionProvider"])
    [inp] = session.get_inputs()
    assert inp.name == "input" and inp.shape[1:] == [224, 224, 3] and inp.type == "tensor(float)"
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities", "features"]
    for n in (1, 3):
        logits, probs, features = session.run(None, {"input": np.zeros((n, 224, 224, 3), np.float32)})
        assert logits.shape == probs.shape == (n, 1000) and features.shape == (n, 2048, 7, 7)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("variant", ["resnet50.onnx", "resnet50.int8.onnx"])
def test_features_output_is_a_tensor_the_graph_computes_anyway(random0_dir, variant):
    """ONNX Runtime runs every node whatever a run fetches (measured: it does not prune by outputs), so the
    feature map must cost nothing when not fetched: it is the input of the global average pooling, and no node
    exists only to produce it."""
    import onnx

    if not (random0_dir / variant).is_file():
        pytest.skip(f"{variant} not converted here")
    graph = onnx.load(str(random0_dir / variant)).graph
    consumed = {name for node in graph.node for name in node.input}
    pooling = [n for n in graph.node if "features" in n.input]
    assert [n.op_type for n in pooling] == ["GlobalAveragePool"]
    dead_ends = [n.op_type for n in graph.node if not (set(n.output) & (consumed | {"logits", "probabilities"}))]
    assert dead_ends == []


def test_onnx_answers_like_keras_on_photos(random0_dir, card, photos):
    """The service's criterion: same top-1 class and same score rounded to 4 decimals as Keras itself."""
    import onnxruntime as ort
    from keras_model import resnet50_reference
    from parity import keras_photo_batch

    x = keras_photo_batch(photos)
    keras_probs = resnet50_reference(random0_dir / card["weights"]["path"]).predict(x, verbose=0)
    session = ort.InferenceSession(str(random0_dir / "resnet50.onnx"), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(["probabilities"], {"input": x})[0]
    assert list(onnx_probs.argmax(1)) == list(keras_probs.argmax(1))
    assert [round(float(p), 4) for p in onnx_probs.max(1)] == [round(float(p), 4) for p in keras_probs.max(1)]


def test_card_status_cli_on_the_real_folder(random0_dir):
    assert run_cli("card_status.py", "--weights", "random:0", "--model-dir", str(random0_dir)).returncode == 0
    assert run_cli("card_status.py", "--weights", "random:1", "--model-dir", str(random0_dir)).returncode == 1


def test_convert_from_weights_file(tmp_path):
    """Weights saved by model.save_weights() (seed 7) convert with source=file and that file's sha256."""
    from keras_model import load_model
    from weights import parse_weights_spec

    seed7 = load_model(parse_weights_spec("random:7"), tmp_path)  # also saves resnet50.random-seed7.weights.h5
    weights = tmp_path / "mine.weights.h5"
    seed7.weights_path.rename(weights)
    out = tmp_path / "out"
    done = run_cli("convert.py", "--weights", str(weights), "--out-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    assert card["weights"]["source"] == "file" and card["weights"]["seed"] is None
    assert card["weights"]["path"] == str(weights) and card["weights"]["sha256"] == sha256_file(weights)
    assert card["parity"]["max_abs_diff_probs"] <= 1e-4
    assert not list(out.glob("resnet50.random-seed*"))  # nothing random about this model
    assert run_cli("card_status.py", "--weights", str(weights), "--model-dir", str(out)).returncode == 0
    assert run_cli("card_status.py", "--weights", "random:7", "--model-dir", str(out)).returncode == 1
