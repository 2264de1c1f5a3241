"""Weights files in both Keras formats load into the same ResNet50; the wrong architecture, or a head of other
classes, is refused with the reason."""

import numpy as np
import pytest

from keras_model import head_classes, load_model, resnet50_logits
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


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_head_of_other_classes_is_refused_by_its_class_count(seeded, tmp_path):
    import keras

    ten = keras.applications.ResNet50(weights=None, classes=10, classifier_activation=None)
    path = tmp_path / "ten.weights.h5"
    ten.save_weights(str(path))
    assert head_classes(path) == 10 and head_classes(seeded.weights_path) == 1000
    with pytest.raises(
        WeightsError, match="has a 10-class head; this service serves ResNet50 with its 1000 ImageNet classes"
    ):
        resnet50_logits(path)
    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    small.save_weights(str(tmp_path / "small.weights.h5"))
    assert head_classes(tmp_path / "small.weights.h5") is None
    (tmp_path / "garbage.weights.h5").write_bytes(b"not hdf5")
    assert head_classes(tmp_path / "garbage.weights.h5") is None
