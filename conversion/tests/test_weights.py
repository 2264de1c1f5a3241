"""Parsing of --weights: explicit sources only, seeds and paths validated before any work starts."""

import pytest

from weights import WeightsError, parse_weights_spec, random_weights_filename


@pytest.mark.parametrize(
    "request_, seed, expected",
    [
        ("random", None, 0),
        ("random", 4, 4),
        ("random:7", None, 7),
        ("random:7", 7, 7),
        (" random:0 ", None, 0),
    ],
)
def test_random_seeds(request_, seed, expected):
    spec = parse_weights_spec(request_, seed)
    assert (spec.source, spec.seed, spec.path) == ("random", expected, None)
    assert spec.request == request_


@pytest.mark.parametrize("request_, seed", [("random:x", None), ("random:3", 4), ("random:-1", None)])
def test_bad_random_specs(request_, seed):
    with pytest.raises(WeightsError):
        parse_weights_spec(request_, seed)


def test_imagenet():
    spec = parse_weights_spec("imagenet")
    assert (spec.source, spec.seed, spec.path) == ("imagenet", None, None)


@pytest.mark.parametrize("name", ["mine.weights.h5", "legacy.h5"])
def test_existing_h5_file_is_resolved(tmp_path, monkeypatch, name):
    (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    spec = parse_weights_spec(name)
    assert spec.source == "file" and spec.path == (tmp_path / name).resolve()


def test_missing_file_and_wrong_extension(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        parse_weights_spec(str(tmp_path / "nope.weights.h5"))
    (tmp_path / "model.keras").write_bytes(b"x")
    with pytest.raises(WeightsError, match="not a Keras weights file"):
        parse_weights_spec(str(tmp_path / "model.keras"))


def test_random_weights_filename():
    assert random_weights_filename(0) == "resnet50.random-seed0.weights.h5"
