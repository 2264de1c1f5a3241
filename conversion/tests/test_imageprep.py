"""The pure Pillow/numpy preprocessing used for INT8 calibration is bit-identical to Keras' own."""
import io

import numpy as np
import pytest
from PIL import Image

from imageprep import load_batch, preprocess_file


def keras_reference(path) -> np.ndarray:
    import keras

    x = keras.utils.img_to_array(keras.utils.load_img(str(path), target_size=(224, 224)))
    return keras.applications.resnet50.preprocess_input(x[None])[0]


def test_photos_match_keras_bit_for_bit(photos):
    for path in photos:
        ours = preprocess_file(path)
        assert ours.dtype == np.float32 and ours.shape == (224, 224, 3)
        np.testing.assert_array_equal(ours, keras_reference(path), err_msg=path.name)


@pytest.mark.parametrize("mode, size, fmt", [("RGBA", (300, 200), "PNG"), ("L", (224, 224), "PNG"),
                                             ("P", (97, 333), "GIF"), ("RGB", (224, 224), "JPEG")])
def test_other_modes_and_sizes_match_keras(tmp_path, mode, size, fmt):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    path = tmp_path / f"img.{fmt.lower()}"
    (rgb.convert(mode) if mode != "P" else rgb.quantize(64)).save(path, fmt)
    np.testing.assert_array_equal(preprocess_file(path), keras_reference(path))


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (300, 100), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 150, 100))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    (tmp_path / "rot.jpg").write_bytes(buf.getvalue())
    x = preprocess_file(tmp_path / "rot.jpg") + np.array([103.939, 116.779, 123.68], dtype=np.float32)
    assert x[10, 112, 0] > 200 and x[-10, 112, 2] > 200  # BGR: blue on top, red at the bottom after rotation


def test_load_batch_stacks(photos):
    batch = load_batch(photos[:2])
    assert batch.shape == (2, 224, 224, 3) and batch.dtype == np.float32
