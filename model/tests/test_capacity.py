"""capacity.py: the fleet's images/s from the model card's measured speed, scaled to the cores the fleet uses."""

from __future__ import annotations

import json

import settings
from capacity import fleet_capacity, measured_img_s

SPEED = {"fp32_img_s": 12.0, "int8_img_s": 40.0, "threads": 2, "batch": 8, "load_avg_1m": 0.5}
CARD = {"serve": "fp32", "variants": {"fp32": {"file": "a.onnx"}, "int8": {"file": "b.onnx", "speed": SPEED}}}


def test_measured_rate_of_each_variant_or_none():
    assert measured_img_s(CARD, "int8") == (40.0, SPEED)
    assert measured_img_s(CARD, "fp16") == (None, {})
    assert measured_img_s({"variants": {"fp32": {}}}, "fp32") == (None, {})


def test_fleet_rate_scales_with_the_cores_used(tmp_path):
    (tmp_path / "model_card.json").write_text(json.dumps(CARD))
    two = fleet_capacity(settings.load(MODEL_DIR=str(tmp_path), WORKERS=2, THREADS=1), cores=4)
    assert (two["workers"], two["variant"], two["img_s"]) == (2, "fp32", 12.0)
    four = fleet_capacity(settings.load(MODEL_DIR=str(tmp_path), WORKERS=4, THREADS=1, MODEL_VARIANT="int8"), cores=4)
    assert four["img_s"] == 80.0 and "load average 0.5" in four["source"]
    beyond = fleet_capacity(settings.load(MODEL_DIR=str(tmp_path), WORKERS=8, THREADS=2), cores=4)
    assert beyond["img_s"] == 24.0  # never more cores than there are


def test_no_card_no_rate(tmp_path):
    got = fleet_capacity(settings.load(MODEL_DIR=str(tmp_path / "missing"), WORKERS=2, BATCH_SIZE=4), cores=2)
    assert got["img_s"] is None and got["batch_size"] == 4 and "no model card" in got["source"]


def test_the_rate_comes_from_the_version_a_worker_would_serve(tmp_path):
    for version, rate in ((1, 5.0), (2, 9.0)):
        folder = tmp_path / "resnet50" / str(version)
        folder.mkdir(parents=True)
        speed = SPEED | {"fp32_img_s": rate, "threads": 1}
        (folder / "model_card.json").write_text(json.dumps({"serve": "fp32", "variants": {"fp32": {"speed": speed}}}))
    repo = {"MODEL_DIR": "", "MODEL_REPOSITORY": str(tmp_path), "WORKERS": 1, "THREADS": 1}
    assert fleet_capacity(settings.load(**repo), cores=2)["img_s"] == 9.0  # the newest
    assert fleet_capacity(settings.load(**repo, MODEL_VERSION="1"), cores=2)["img_s"] == 5.0  # the pinned one
