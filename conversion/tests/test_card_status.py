"""card_status decides whether `make run` converts again: any mismatch in weights or files means yes."""

import json
from pathlib import Path

import pytest

import card_status
from class_names import load_class_index, write_class_index
from model_card import CARD_NAME, FEATURE_MAP
from weights import parse_weights_spec, random_weights_filename, sha256_file


def make_dir(
    tmp_path: Path, source: str = "random", seed: int | None = 0, weights_file: Path | None = None, int8: bool = False
) -> Path:
    """A fake model folder whose card is consistent with its (tiny) files."""
    folder = tmp_path / "model"
    folder.mkdir()
    variants = {}
    for name, file in [("fp32", "resnet50.onnx")] + ([("int8", "resnet50.int8.onnx")] if int8 else []):
        (folder / file).write_bytes(f"onnx {name}".encode())
        variants[name] = {"file": file, "sha256": sha256_file(folder / file)}
    if source == "random":
        weights_file = folder / random_weights_filename(seed)
        weights_file.write_bytes(b"random weights")
    weights = {"source": source, "seed": seed, "sha256": sha256_file(weights_file) if weights_file else "abc"}
    (folder / CARD_NAME).write_text(
        json.dumps({"serve": "fp32", "variants": variants, "weights": weights, "feature_map": FEATURE_MAP})
    )
    return folder


def status(folder: Path, request: str, **kw) -> str | None:
    return card_status.stale_reason(card_status.read_card(folder), parse_weights_spec(request), folder, **kw)


def test_matching_random_card_is_up_to_date(tmp_path):
    folder = make_dir(tmp_path)
    assert status(folder, "random") is None
    assert status(folder, "random:0") is None


@pytest.mark.parametrize("request_, fragment", [("random:1", "seed"), ("imagenet", "'imagenet' requested")])
def test_other_weights_need_conversion(tmp_path, request_, fragment):
    assert fragment in status(make_dir(tmp_path), request_)


def test_changed_or_missing_files_need_conversion(tmp_path):
    folder = make_dir(tmp_path)
    (folder / "resnet50.onnx").write_bytes(b"truncated")
    assert "fp32" in status(folder, "random")
    (folder / "resnet50.onnx").unlink()
    assert "fp32" in status(folder, "random")


def test_changed_random_weights_file_needs_conversion(tmp_path):
    folder = make_dir(tmp_path)
    (folder / random_weights_filename(0)).write_bytes(b"other")
    assert "random weights" in status(folder, "random")


def test_missing_or_corrupt_card(tmp_path):
    folder = make_dir(tmp_path)
    (folder / CARD_NAME).write_text("{not json")
    assert status(folder, "random") == "no readable model_card.json"
    (folder / CARD_NAME).unlink()
    assert status(folder, "random") == "no readable model_card.json"


def test_card_without_the_feature_map_output_needs_conversion(tmp_path):
    """Models converted before class activation maps existed have no `features` output: convert them again."""
    folder = make_dir(tmp_path)
    card = json.loads((folder / CARD_NAME).read_text())
    del card["feature_map"]
    (folder / CARD_NAME).write_text(json.dumps(card))
    assert "feature map" in status(folder, "random")
    assert card_status.main(["--weights", "random", "--model-dir", str(folder), "-q"]) == 1


def test_weights_file_is_compared_by_sha256(tmp_path):
    weights = tmp_path / "mine.weights.h5"
    weights.write_bytes(b"v1")
    folder = make_dir(tmp_path, source="file", seed=None, weights_file=weights)
    assert status(folder, str(weights)) is None
    weights.write_bytes(b"v2")
    assert "differs" in status(folder, str(weights))


def test_int8_requirement(tmp_path):
    folder = make_dir(tmp_path)
    assert status(folder, "random", need_int8=True) == "requested variant missing from the card"
    (tmp_path / "with_int8").mkdir()
    other = make_dir(tmp_path / "with_int8", int8=True)
    assert status(other, "random", need_int8=True) is None


def test_cli_exit_codes(tmp_path, capsys):
    folder = make_dir(tmp_path)
    assert card_status.main(["--weights", "random", "--model-dir", str(folder)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert card_status.main(["--weights", "random:2", "--model-dir", str(folder)]) == 1
    assert card_status.main(["--weights", "random", "--model-dir", str(tmp_path / "none")]) == 1
    assert card_status.main(["--weights", str(tmp_path / "missing.h5"), "--model-dir", str(folder)]) == 2


def test_other_class_names_need_conversion(tmp_path):
    folder = make_dir(tmp_path)  # a card from before class indexes: made with ImageNet's names
    flowers = {"0": ["0", "daisy"], "1": ["1", "rose"]}
    assert status(folder, "random") is None and status(folder, "random", labels=load_class_index()) is None
    assert status(folder, "random", labels=flowers) == "card was made with other class names (LABELS)"
    card = json.loads((folder / CARD_NAME).read_text())
    (folder / CARD_NAME).write_text(json.dumps(card | write_class_index(folder, flowers)))
    assert status(folder, "random", labels=flowers) is None
    assert status(folder, "random") == "card was made with other class names (LABELS)"
