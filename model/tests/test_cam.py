"""Class activation maps: the formula, the kernel read from the graph, and the worker answering `explain` jobs.

A small stand-in model with ResNet50's head shape (features → global average pool → MatMul + bias → logits):
its features are 32×32 block means of the input, so the expected maps can be computed here by hand. The real
ResNet50 against Keras is covered in conversion/tests/test_cam_matches_keras.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from resnet_common import cam
from classifier import Classifier
from helpers import enqueue, photo, result
from job_queue import JobQueue, connect
from metrics import WorkerMetrics
from settings import load
from testkit.tiny_model import write_card
from worker import Worker

onnx = pytest.importorskip("onnx", reason="onnx builds the stand-in model")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(12)
KERNEL = (RNG.standard_normal((3, 1000)) * 0.05).astype(np.float32)
BIAS = (RNG.standard_normal(1000) * 10).astype(np.float32)  # large on purpose: a map that used it would differ


def head_model(kernel_node: str = "matmul") -> onnx.ModelProto:
    """input NHWC → NCHW → 32×32 average pool = `features` [N,3,7,7] → mean → dense → logits → softmax."""
    inits = [numpy_helper.from_array(BIAS, "b"), numpy_helper.from_array(np.array([-1, 3], np.int64), "shape")]
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("AveragePool", ["nchw"], ["features"], kernel_shape=[32, 32], strides=[32, 32]),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
    ]
    if kernel_node == "matmul":
        inits.append(numpy_helper.from_array(KERNEL, "W"))
        nodes += [helper.make_node("MatMul", ["flat", "W"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["logits"])]
    elif kernel_node == "gemm_transposed":
        inits.append(numpy_helper.from_array(np.ascontiguousarray(KERNEL.T), "Wt"))
        nodes.append(helper.make_node("Gemm", ["flat", "Wt", "b"], ["logits"], transB=1))
    elif kernel_node == "dequantized":  # a QDQ graph's kernel: int8 per output channel
        scale = (np.abs(KERNEL).max(axis=0) / 127).astype(np.float32)
        q = np.round(KERNEL / scale).astype(np.int8)
        inits += [
            numpy_helper.from_array(q, "Wq"),
            numpy_helper.from_array(scale, "Ws"),
            numpy_helper.from_array(np.zeros(1000, np.int8), "Wz"),
        ]
        nodes += [
            helper.make_node("DequantizeLinear", ["Wq", "Ws", "Wz"], ["W"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["mm"]),
            helper.make_node("Add", ["mm", "b"], ["logits"]),
        ]
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1))
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 1000]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3, 7, 7]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("head-model"))
    onnx.save(head_model(), os.path.join(folder, "head.onnx"))
    write_card(folder, "head.onnx", "Head")
    return folder


@pytest.fixture(scope="module")
def clf(head_dir, labels_file):
    c = Classifier(load(MODEL_DIR=head_dir, LABELS_FILE=labels_file), threads=1)
    c.initialize()
    yield c
    c.finalize()


def expected_map(x: np.ndarray) -> np.ndarray:
    """By hand: block means of the NHWC input, weighted by the top-1 class's kernel column, ReLU, / max."""
    features = x.reshape(7, 32, 7, 32, 3).mean(axis=(1, 3))  # [7, 7, 3]
    logits = features.mean(axis=(0, 1)) @ KERNEL + BIAS
    raw = np.maximum(features @ KERNEL[:, int(np.argmax(logits))], 0)
    return raw / raw.max() if raw.max() > 0 else raw


def inputs(n: int, seed: int = 3) -> list[np.ndarray]:
    """Images whose 32×32 blocks have random colours of both signs, so every class map has positive cells."""
    rng = np.random.default_rng(seed)
    blocks = [rng.uniform(-100, 100, (7, 7, 3)) for _ in range(n)]
    return [
        np.repeat(np.repeat(b, 32, 0), 32, 1).astype(np.float32) + rng.uniform(-5, 5, (224, 224, 3)).astype(np.float32)
        for b in blocks
    ]


@pytest.mark.parametrize("kind", ["matmul", "gemm_transposed", "dequantized"])
def test_dense_kernel_is_read_from_the_graph_without_the_bias(kind):
    kernel = cam.dense_kernel(head_model(kind))
    assert kernel.shape == (3, 1000) and kernel.dtype == np.float32
    np.testing.assert_allclose(kernel, KERNEL, atol=np.abs(KERNEL).max() / 127 if kind == "dequantized" else 0)


def test_dense_kernel_refuses_a_graph_without_a_dense_layer(tmp_path):
    model = head_model()
    del model.graph.node[4:]  # nothing produces `logits` any more
    with pytest.raises(ValueError, match="no MatMul/Gemm produces 'logits'"):
        cam.dense_kernel(model)


def test_map_formula_relu_and_normalisation():
    features = np.zeros((2, 2, 1, 3), np.float32)
    features[0, :, 0, :] = [[1, 2, 3], [1, 0, -1]]  # class 0 weights (1, -1): cells 0, 2, 4 → relu 0, 2, 4
    features[1, :, 0, :] = [[1, 1, 1], [2, 2, 2]]  # class 1 weights (-1, 0): every cell negative → zeros
    kernel_t = np.array([[1, -1], [-1, 0]], np.float32)
    maps = cam.class_activation_maps(features, kernel_t, [0, 1])
    np.testing.assert_allclose(maps[0, 0], [0, 0.5, 1])
    assert maps.shape == (2, 1, 3) and not maps[1].any()
    assert cam.as_lists(maps[0]) == [[0.0, 0.5, 1.0]]


def test_classifier_explains_only_the_items_that_ask(clf):
    assert clf.explainer is not None and clf.explainer.output == "features"
    xs = inputs(3)
    preds = clf.predict_batch(xs, top_k=[1, 5, 3], explain=[True, False, True])
    assert [p.ok for p in preds] == [True] * 3 and preds[1].heatmap is None
    for x, p in zip([xs[0], xs[2]], [preds[0], preds[2]]):
        got = np.array(p.heatmap)
        assert got.shape == (7, 7) and got.max() == 1.0 and got.min() >= 0 and (got > 0).sum() >= 10
        np.testing.assert_allclose(got, expected_map(x), atol=1e-4)  # rounded to 4 decimals
    assert not np.allclose(preds[0].heatmap, preds[2].heatmap)
    # the same items without explain get exactly the same classes and scores
    assert [p.top_k for p in clf.predict_batch(xs, top_k=[1, 5, 3])] == [p.top_k for p in preds]


def test_feature_map_is_fetched_only_when_an_item_asks(clf, monkeypatch):
    fetched: list[list[str]] = []
    session = clf.handle.session

    class Spy:
        def run(self, names, feed):
            fetched.append(list(names))
            return session.run(names, feed)

    monkeypatch.setattr(clf.handle, "session", Spy())
    clf.predict_batch(inputs(2), 1)
    clf.predict_batch(inputs(2), 1, explain=[False, False])
    clf.predict_batch(inputs(2), 1, explain=[False, True])
    assert fetched == [["probabilities"], ["probabilities"], ["probabilities", "features"]]


def test_model_without_feature_output_answers_without_heatmap(tiny_model_dir, labels_file):
    c = Classifier(load(MODEL_DIR=tiny_model_dir, LABELS_FILE=labels_file), threads=1)
    c.initialize()
    assert c.explainer is None
    [pred] = c.predict_batch(inputs(1), 1, explain=[True])
    assert pred.ok and pred.heatmap is None


def test_unreadable_dense_head_disables_maps_but_not_classification(tmp_path, labels_file, caplog):
    model = head_model()
    model.graph.node.insert(0, helper.make_node("Relu", ["W"], ["W_computed"]))  # kernel no longer a constant
    for node in model.graph.node:
        if node.op_type == "MatMul":
            node.input[1] = "W_computed"
    onnx.save(model, str(tmp_path / "odd.onnx"))
    write_card(str(tmp_path), "odd.onnx", "Odd")
    c = Classifier(load(MODEL_DIR=str(tmp_path), LABELS_FILE=labels_file), threads=1)
    c.initialize()
    assert c.explainer is None and "class activation maps disabled" in caplog.text
    [pred] = c.predict_batch(inputs(1), 1, explain=[True])
    assert pred.ok and pred.heatmap is None


def test_worker_answers_heatmap_only_to_jobs_that_ask(r, make_cfg, head_dir):
    cfg = make_cfg(MODEL_DIR=head_dir)
    c = Classifier(cfg, threads=1)
    c.initialize()
    worker = Worker(cfg, c, JobQueue(connect(cfg, 100), cfg, "w-cam"), WorkerMetrics("w-cam"))
    try:
        asked = enqueue(r, photo("cat.jpg"), explain="1")
        plain = enqueue(r, photo("cat.jpg"))
        other = enqueue(r, photo("coffee.jpg"), explain="1")
        assert worker.step(block=False) == 3
    finally:
        worker.close()
    with_map, without, coffee = (result(r, i, timeout=1) for i in (asked, plain, other))
    assert "heatmap" not in without and with_map["batch_size"] == 3
    grid = np.array(with_map["heatmap"])
    assert grid.shape == (7, 7) and grid.max() == 1.0 and (grid >= 0).all()
    assert with_map["prediction"] == without["prediction"] and with_map["score"] == without["score"]
    assert not np.allclose(grid, coffee["heatmap"])


def test_every_converted_variant_explains(real_model_dir, labels_file):
    """fp32 and INT8 (QDQ) ResNet50: kernel found in the graph, one 7 x 7 map per asking item."""
    import json

    from resnet_common.preprocess import preprocess_bytes

    with open(os.path.join(real_model_dir, "model_card.json"), encoding="utf-8") as fh:
        variants = sorted(json.load(fh)["variants"])
    for variant in variants:
        c = Classifier(load(MODEL_DIR=real_model_dir, MODEL_VARIANT=variant, LABELS_FILE=labels_file), threads=1)
        c.initialize()
        try:
            assert c.explainer is not None and c.explainer.kernel_t.shape == (1000, 2048), variant
            [pred] = c.predict_batch([preprocess_bytes(photo("cat.jpg"))], 1, explain=[True])
            grid = np.array(pred.heatmap)
            assert grid.shape == (7, 7) and grid.max() == 1.0 and (grid > 0).sum() >= 10, variant
        finally:
            c.finalize()
