"""Weights files in both Keras formats load into the same ResNet50, with the head they carry; the wrong
architecture, or class names that do not name the head's outputs, is refused with the reason."""

import numpy as np
import pytest

from keras_model import head_classes, load_model, require_head, resnet50_logits, resnet50_reference
from weights import WeightsError, parse_weights_spec


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return load_model(parse_weights_spec("random:3"), tmp_path_factory.mktemp("seed3"))


def test_random_weights_are_reproducible_and_saved(seeded, tmp_path):
    """Same seed, same weights; the saved file loads back into keras.applications.ResNet50 unchanged.
    (The file's bytes, hence its sha256, can differ between saves in one process; the values do not.)"""
    import keras

    again = load_model(parse_weights_spec("random:3"), tmp_path)
    other = load_model(parse_weights_spec("random:4"), tmp_path)
    assert seeded.weights_path.name == "resnet50.random-seed3.weights.h5"
    reloaded = keras.applications.ResNet50(weights=str(seeded.weights_path))
    first = seeded.model.get_weights()
    for a, b, c in zip(first, again.model.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not np.array_equal(first[0], other.model.get_weights()[0])


def test_legacy_h5_loads_like_weights_h5(seeded, tmp_path):
    """The ImageNet download is the legacy HDF5 layout; write that layout and load it back."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    legacy = tmp_path / "resnet50_legacy.h5"
    with h5py.File(legacy, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, seeded.model)
    loaded = resnet50_logits(legacy)
    assert head_classes(legacy) == 1000
    for a, b in zip(seeded.model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Keras warns about every layer it cannot match
def test_wrong_file_is_refused(tmp_path):
    import keras

    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "small.weights.h5"
    small.save_weights(str(path))
    with pytest.raises(WeightsError, match="not a Keras ResNet50 weights file"):
        resnet50_logits(path)


@pytest.fixture(scope="module")
def ten_classes(tmp_path_factory):
    """A ResNet50 with a head of 10 classes (seeded), as fine-tuning leaves it, saved by Keras."""
    folder = tmp_path_factory.mktemp("ten")
    return load_model(parse_weights_spec("random:5"), folder, classes=10)


def test_a_head_of_its_own_classes_loads_with_its_class_count(ten_classes, seeded, tmp_path):
    path = ten_classes.weights_path
    assert head_classes(path) == 10 and head_classes(seeded.weights_path) == 1000
    assert ten_classes.model.output_shape == (None, 10)
    loaded = resnet50_logits(path)  # the head comes from the file
    for a, b in zip(ten_classes.model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resnet50_reference(path).output_shape == (None, 10)
    again = load_model(parse_weights_spec(str(path)), tmp_path, classes=10)
    assert again.model.output_shape == (None, 10) and again.weights_sha256 == ten_classes.weights_sha256


def test_labels_that_do_not_name_the_head_are_refused_before_tensorflow_loads_it(ten_classes, tmp_path):
    ten = parse_weights_spec(str(ten_classes.weights_path))
    require_head(ten, 10, "flowers.txt")  # one name per output: accepted
    with pytest.raises(
        WeightsError, match=r"has a 10-class head; without LABELS it answers 1000 ImageNet classes: name them with"
    ):
        require_head(ten, 1000, None)
    with pytest.raises(WeightsError, match=r"has a 10-class head; LABELS=flowers.txt names 9 classes: one name per"):
        require_head(ten, 9, "flowers.txt")
    with pytest.raises(WeightsError, match=r"ImageNet's weights have a 1000-class head; LABELS=f.txt names 10"):
        require_head(parse_weights_spec("imagenet"), 10, "f.txt")
    require_head(parse_weights_spec("random:1"), 7, "seven.txt")  # random weights get the head LABELS asks for


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_head_classes_of_files_without_a_resnet50_head(tmp_path):
    import keras

    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    small.save_weights(str(tmp_path / "small.weights.h5"))
    assert head_classes(tmp_path / "small.weights.h5") is None
    (tmp_path / "garbage.weights.h5").write_bytes(b"not hdf5")
    assert head_classes(tmp_path / "garbage.weights.h5") is None
