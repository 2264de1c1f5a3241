"""The worker's class activation maps match a Keras reference on the seeded random-weights model `make test` serves.

Keras side: conv5_block3_out of the Keras model built from the card's weights file, the `predictions` kernel
(no bias) and the top-1 class of Keras' own probabilities, combined by the issue's formula in float64
(cam_parity.reference_cams). Worker side: model/classifier.py on the converted ONNX model, fed by the worker's
preprocessing, asked to explain; its kernel is read from the ONNX graph, its features from the same run.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from cam_parity import keras_features, reference_cams
from parity import keras_photo_batch
from test_worker_matches_keras import ARTIFACTS, weights_file  # noqa: F401 (fixture)

TOLERANCE_CELL = 1e-3
TOLERANCE_FEATURES_REL = 1e-4


@pytest.fixture(scope="module")
def keras_side(weights_file: Path, photos: list[Path]):  # noqa: F811 (the fixture imported above)
    from keras_model import resnet50_logits, resnet50_reference

    x = keras_photo_batch(photos)
    logits_model = resnet50_logits(weights_file)
    features = keras_features(logits_model, x)
    classes = resnet50_reference(weights_file).predict(x, verbose=0).argmax(1)
    kernel = np.asarray(logits_model.get_layer("predictions").kernel)
    return features, reference_cams(features, kernel, classes)


@pytest.fixture(scope="module", params=["fp32"])
def explaining_worker(request, weights_file: Path):  # noqa: F811
    import classifier  # model/ is on sys.path (pytest.ini)
    import settings

    clf = classifier.Classifier(settings.Settings(MODEL_DIR=str(ARTIFACTS), MODEL_VARIANT=request.param), threads=2)
    clf.initialize()
    yield clf
    clf.finalize()


def test_the_reference_is_a_real_test(keras_side):
    """Seed 0 gives maps with a positive peak, at least 10 non-zero cells, and different maps per photo."""
    _, maps = keras_side
    assert maps.shape[1:] == (7, 7)
    assert (maps.max(axis=(1, 2)) == 1.0).all()
    assert ((maps > 0).sum(axis=(1, 2)) >= 10).all()
    for a, b in itertools.combinations(range(len(maps)), 2):
        assert np.max(np.abs(maps[a] - maps[b])) > 0.05, (a, b)


def test_worker_feature_map_matches_keras(explaining_worker, keras_side, photos):
    import imageprep

    features, _ = keras_side
    batch = np.stack([imageprep.preprocess_file(p) for p in photos])
    _, onnx_features = explaining_worker._infer(batch, features=True)
    got = onnx_features.transpose(0, 2, 3, 1)  # the graph's NCHW → Keras' NHWC
    scale = float(np.max(np.abs(features)))
    assert got.shape == features.shape == (len(photos), 7, 7, 2048)
    assert float(np.max(np.abs(got - features))) <= TOLERANCE_FEATURES_REL * scale


def test_worker_heatmaps_match_keras_per_cell(explaining_worker, keras_side, photos):
    import imageprep

    _, expected = keras_side
    arrays = [imageprep.preprocess_file(p) for p in photos]
    preds = explaining_worker.predict_batch(arrays, top_k=1, explain=[True] * len(arrays))
    for path, pred, ref in zip(photos, preds, expected):
        assert pred.ok and pred.heatmap is not None, path.name
        got = np.array(pred.heatmap)
        assert got.shape == (7, 7) and got.max() == 1.0
        diff = float(np.max(np.abs(got - ref)))
        assert diff <= TOLERANCE_CELL, f"{path.name}: heatmap differs from Keras by {diff:.3g} in a cell"
    maps = [np.array(p.heatmap) for p in preds]
    assert any(np.argmax(a) != np.argmax(b) for a, b in itertools.combinations(maps, 2)), "every photo peaks alike"
