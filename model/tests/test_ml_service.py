"""ml_service.predict(image_name): the original app's in-process contract, on the tiny and the real model."""

from __future__ import annotations

import shutil

import pytest

import ml_service
import settings
from classifier import Classifier
from helpers import PHOTOS, photo
from resnet_common.preprocess import InvalidImage, preprocess_bytes


@pytest.fixture(params=["tiny", pytest.param("real", marks=pytest.mark.real_model)])
def model_env(request, monkeypatch, labels_file):
    model_dir = request.getfixturevalue(f"{request.param}_model_dir")
    monkeypatch.setenv("MODEL_DIR", model_dir)
    monkeypatch.setenv("LABELS_FILE", labels_file)
    monkeypatch.setattr(ml_service, "_classifier", None)
    yield model_dir
    monkeypatch.setattr(ml_service, "_classifier", None)


def test_predict_reads_the_upload_folder_at_call_time(model_env, monkeypatch, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    shutil.copy(f"{PHOTOS}/cat.jpg", first / "img.jpg")
    shutil.copy(f"{PHOTOS}/rocket.jpg", second / "img.jpg")
    monkeypatch.setenv("UPLOAD_FOLDER", str(first))
    label, score = ml_service.predict("img.jpg")
    assert isinstance(label, str) and type(score) is float and score == round(score, 4) and 0 < score <= 1

    clf = Classifier(settings.load(), threads=1)
    clf.initialize()
    expected = {
        name: clf.predict_batch([preprocess_bytes(photo(name))], 1)[0].top_k[0] for name in ("cat.jpg", "rocket.jpg")
    }
    assert (label, score) == expected["cat.jpg"]
    monkeypatch.setenv("UPLOAD_FOLDER", str(second))
    assert ml_service.predict("img.jpg") == expected["rocket.jpg"]


def test_predict_rejects_a_non_image(model_env, monkeypatch, tmp_path):
    (tmp_path / "fake.jpg").write_bytes(b"just text")
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path))
    with pytest.raises(InvalidImage):
        ml_service.predict("fake.jpg")
