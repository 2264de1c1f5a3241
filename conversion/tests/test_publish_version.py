"""`make model` into the repository: a version per new weights, files reused from a folder made from the same
weights, nothing added when the newest version already matches; the INT8 hold-out split and its refusal rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from class_names import load_class_index, names
from export import class_names_of
from helpers import PHOTOS, run_cli
from quantize_policy import AgreementTooLow, check_agreement, split_holdout


def published(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "resnet50").iterdir())


def test_reuse_then_nothing_to_do(random0_dir, tmp_path):
    repo = tmp_path / "repository"
    first = run_cli(
        "publish_version.py", "--weights", "random:0", "--repository", str(repo), "--reuse-from", str(random0_dir)
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "reusing the files of" in first.stdout and published(repo) == ["1"]
    version = repo / "resnet50" / "1"
    assert (version / "resnet50.onnx").stat().st_ino == (random0_dir / "resnet50.onnx").stat().st_ino  # a hard link
    card = json.loads((version / "model_card.json").read_text())
    assert card["repository"]["reused_from"] == str(random0_dir) and card["weights"]["seed"] == 0
    assert (card["labels"], card["classes"]) == ("class_index.json", 1000)  # ImageNet's, into the version
    assert json.loads((version / "class_index.json").read_text()) == load_class_index()
    again = run_cli("publish_version.py", "--weights", "random:0", "--repository", str(repo))
    assert again.returncode == 0 and "already made from WEIGHTS=random:0" in again.stdout
    assert published(repo) == ["1"]  # no new version, no leftover temporary folder


FLOWERS = ["daisy", "dandelion", "rose", "sunflower", "tulip"]


def test_a_head_of_its_own_classes_is_published_with_its_names(tmp_path, photos):
    """`make model WEIGHTS=<fine-tuned weights> LABELS=<names>`; the worker names Keras' classes as LABELS does;
    refused when the names do not fit the head."""
    import classifier  # model/ is on sys.path (pytest.ini)
    import onnxruntime as ort
    import settings
    from imageprep import preprocess_file
    from keras_model import load_model, resnet50_reference
    from parity import keras_photo_batch
    from weights import parse_weights_spec

    weights = load_model(parse_weights_spec("random:5"), tmp_path, classes=5).weights_path  # as fine-tuning leaves it
    repo, labels = tmp_path / "repository", tmp_path / "flowers.txt"
    labels.write_text("\n".join(FLOWERS) + "\n")
    args = ("publish_version.py", "--weights", str(weights), "--labels", str(labels), "--repository", str(repo))
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    version = repo / "resnet50" / "1"
    card = json.loads((version / "model_card.json").read_text())
    assert (card["labels"], card["classes"], card["parity"]["top1_agreement"]) == ("class_index.json", 5, 1.0)
    assert names(json.loads((version / card["labels"]).read_text())) == FLOWERS
    assert class_names_of(version / "resnet50.onnx") == FLOWERS  # in the file: its sha256 covers the names
    session = ort.InferenceSession(str(version / "resnet50.onnx"), providers=["CPUExecutionProvider"])
    assert {o.name: o.shape[1] for o in session.get_outputs()}["probabilities"] == 5
    keras_top = resnet50_reference(weights).predict(keras_photo_batch(photos), verbose=0).argmax(axis=1)
    worker = classifier.Classifier(settings.Settings(MODEL_DIR=str(version), MODEL_VARIANT="fp32"), threads=2)
    worker.initialize()
    answers = worker.predict_batch([preprocess_file(p) for p in photos], top_k=1)
    assert [a.top_k[0][0] for a in answers] == [FLOWERS[i] for i in keras_top]  # Keras' class i is LABELS' line i
    assert "already made" in run_cli(*args).stdout and published(repo) == ["1"]
    labels.write_text("\n".join(reversed(FLOWERS)))  # other names for the same weights: not the same version
    status = run_cli("card_status.py", "--weights", str(weights), "--labels", str(labels), "--model-dir", str(version))
    assert status.returncode == 1 and "other class names (LABELS)" in status.stdout

    for extra, message in [
        ((), "has a 5-class head; without LABELS it answers 1000 ImageNet classes: name them with LABELS=<file>"),
        (("--labels", str(tmp_path / "four.txt")), "has a 5-class head; LABELS=.*four.txt names 4 classes"),
    ]:
        (tmp_path / "four.txt").write_text("\n".join(FLOWERS[:4]))
        refused = run_cli("publish_version.py", "--weights", str(weights), "--repository", str(repo), *extra)
        assert refused.returncode == 2 and re.search(message, refused.stderr), refused.stderr[-3000:]
    assert published(repo) == ["1"]  # nothing published, no leftover temporary folder


def test_unusable_weights_publish_nothing(random0_dir, tmp_path):
    repo = tmp_path / "repository"
    missing = tmp_path / "missing.weights.h5"
    done = run_cli(
        "publish_version.py", "--weights", str(missing), "--repository", str(repo), "--reuse-from", str(random0_dir)
    )
    assert done.returncode == 2 and "missing.weights.h5" in done.stderr
    assert not (repo / "resnet50").exists() or published(repo) == []


def test_holdout_is_every_fourth_image_by_name():
    names = [Path(f"{c}.jpg") for c in "hgfedcba"]
    calibrate, held = split_holdout(names)
    assert [p.name for p in held] == ["d.jpg", "h.jpg"]
    assert [p.name for p in calibrate] == ["a.jpg", "b.jpg", "c.jpg", "e.jpg", "f.jpg", "g.jpg"]
    assert [p.name for p in split_holdout([Path("b.png"), Path("a.png")])[1]] == ["b.png"]
    with pytest.raises(ValueError, match="at least 2 images"):
        split_holdout([Path("a.png")])
    default = split_holdout(sorted(PHOTOS.glob("*.jpg")))[1]
    assert [p.name for p in default] == ["grace_hopper.jpg"]


def test_agreement_below_the_minimum_is_refused_unless_forced(capsys):
    found = {"top1_agreement": 0.5, "images": 4, "held_out": ["x.png", "y.png"]}
    with pytest.raises(AgreementTooLow, match=r"is 0\.500 on 4 held-out inputs .* below INT8_MIN_AGREEMENT=0\.98"):
        check_agreement(found, 0.98, force=False)
    check_agreement(found, 0.98, force=True)
    assert "published because INT8_FORCE=1" in capsys.readouterr().out
    check_agreement({**found, "top1_agreement": 0.98}, 0.98, force=False)
