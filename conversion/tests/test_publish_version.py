"""`make model` into the repository: a version per new weights, files reused from a folder made from the same
weights, nothing added when the newest version already matches; the INT8 hold-out split and its refusal rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    assert (version / "imagenet_class_index.json").is_file()
    card = json.loads((version / "model_card.json").read_text())
    assert card["repository"]["reused_from"] == str(random0_dir) and card["weights"]["seed"] == 0
    again = run_cli("publish_version.py", "--weights", "random:0", "--repository", str(repo))
    assert again.returncode == 0 and "already made from WEIGHTS=random:0" in again.stdout
    assert published(repo) == ["1"]  # no new version, no leftover temporary folder


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
