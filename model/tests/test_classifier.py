"""Classifier lifecycle and per-item results, on the tiny stand-in and on the real converted ResNet50."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from classifier import Classifier
from resnet_common.protocol import ErrorKind
from helpers import PHOTOS, photo
from resnet_common.preprocess import preprocess_bytes
from settings import load
from testkit.tiny_model import make_tiny_model_dir


@pytest.fixture(scope="module")
def tiny(tiny_model_dir, labels_file):
    clf = Classifier(load(MODEL_DIR=tiny_model_dir, LABELS_FILE=labels_file), threads=1)
    clf.initialize()
    yield clf
    clf.finalize()


@pytest.fixture(scope="module")
def resnet(real_model_dir, labels_file):
    clf = Classifier(load(MODEL_DIR=real_model_dir, LABELS_FILE=labels_file), threads=2)
    clf.initialize()
    yield clf
    clf.finalize()


def images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    return [rng.uniform(-120, 150, (224, 224, 3)).astype(np.float32) for _ in range(n)]


def test_lifecycle(tiny_model_dir, labels_file):
    clf = Classifier(load(MODEL_DIR=tiny_model_dir, LABELS_FILE=labels_file))
    assert not clf.ready
    clf.initialize()
    assert clf.ready and len(clf.labels) == 1000
    clf.finalize()
    assert not clf.ready and clf.handle is None


FLOWERS = ["daisy", "dandelion", "rose", "sunflower", "tulip"]


def test_a_head_of_its_own_classes_answers_with_the_names_its_folder_carries(tmp_path, labels_file):
    folder = make_tiny_model_dir(tmp_path / "flowers", classes=5, names=FLOWERS)
    clf = Classifier(load(MODEL_DIR=str(folder), LABELS_FILE=labels_file), threads=1)  # LABELS_FILE: ImageNet's
    clf.initialize()
    assert clf.labels == FLOWERS
    (pred,) = clf.predict_batch(images(1), top_k=10)
    assert pred.ok and sorted(label for label, _ in pred.top_k) == sorted(FLOWERS)  # k is capped by the classes
    assert pred.probabilities.shape == (5,)


@pytest.mark.parametrize("names", [FLOWERS[:4], None])  # an index one short; none of its own (ImageNet's 1000)
def test_a_head_and_a_class_index_of_different_sizes_are_refused_before_serving(tmp_path, labels_file, names):
    folder = make_tiny_model_dir(tmp_path / "flowers", classes=5, names=names)
    clf = Classifier(load(MODEL_DIR=str(folder), LABELS_FILE=labels_file), threads=1)
    with pytest.raises(ValueError, match=f"answers 5 classes; its class index .* names {len(names or range(1000))}$"):
        clf.initialize()
    assert not clf.ready


def test_top_k_sorted_rounded_and_per_item(tiny):
    preds = tiny.predict_batch(images(3), top_k=[1, 5, 10])
    assert [len(p.top_k) for p in preds] == [1, 5, 10]
    for p in preds:
        scores = [s for _, s in p.top_k]
        assert p.ok and scores == sorted(scores, reverse=True)
        assert all(s == round(s, 4) and isinstance(s, float) for s in scores)
        assert all(label in tiny.labels for label, _ in p.top_k)


def test_batch_equals_single_runs(tiny):
    xs = images(4)
    batch = tiny.predict_batch(xs, top_k=3)
    assert [p.top_k for p in batch] == [tiny.predict_batch([x], 3)[0].top_k for x in xs]


def test_non_finite_output_fails_only_that_item(tiny):
    xs = images(3)
    xs[1][0, 0, 0] = np.nan
    preds = tiny.predict_batch(xs, 5)
    assert [p.ok for p in preds] == [True, False, True]
    assert preds[1].error is ErrorKind.INFERENCE_FAILED and preds[1].top_k == []


def test_failing_run_is_retried_item_by_item(tiny):
    """A misshapen input makes the batched run fail; its neighbours still get answers."""
    xs = images(3)
    xs[2] = np.zeros((100, 100, 3), np.float32)
    preds = tiny.predict_batch(xs, 5)
    assert [p.ok for p in preds] == [True, True, False]
    assert preds[2].error is ErrorKind.INFERENCE_FAILED


def test_empty_batch(tiny):
    assert tiny.predict_batch([], 5) == []


def test_real_resnet50_on_photos(resnet):
    files = sorted(glob.glob(os.path.join(PHOTOS, "*.jpg")))
    xs = [preprocess_bytes(open(f, "rb").read()) for f in files]
    batch = resnet.predict_batch(xs, top_k=5)
    single = [resnet.predict_batch([x], top_k=5)[0] for x in xs]
    for b, s in zip(batch, single):
        assert b.ok and len(b.top_k) == 5 and b.top_k[0][0] in resnet.labels
        assert b.top_k[0][0] == s.top_k[0][0]
        assert abs(b.top_k[0][1] - s.top_k[0][1]) <= 1e-4
    assert resnet.handle.session.get_outputs()[1].name == "probabilities"


def test_real_resnet50_probabilities_sum_to_one(resnet):
    probs = resnet._run(preprocess_bytes(photo("coffee.jpg"))[None])
    assert probs.shape == (1, 1000) and abs(float(probs.sum()) - 1) < 1e-4


def test_int8_variant_when_the_card_has_one(real_model_dir, labels_file):
    import json

    with open(os.path.join(real_model_dir, "model_card.json"), encoding="utf-8") as fh:
        if "int8" not in json.load(fh)["variants"]:
            pytest.skip("model converted without --int8")
    clf = Classifier(load(MODEL_DIR=real_model_dir, LABELS_FILE=labels_file, MODEL_VARIANT="int8"), threads=2)
    clf.initialize()
    assert clf.handle.variant == "int8" and clf.handle.path.endswith(".int8.onnx")
    pred = clf.predict_batch([preprocess_bytes(photo("cat.jpg"))], 3)[0]
    assert pred.ok and len(pred.top_k) == 3
