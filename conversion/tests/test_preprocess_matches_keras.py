"""The WORKER's preprocessing (resnet_common.preprocess, reached through imageprep) is bit-identical to Keras':
keras.utils.load_img(path, target_size=(224, 224)) + img_to_array + resnet50.preprocess_input.

The one documented difference: the worker applies EXIF orientation, Keras ignores it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imageprep
from imageprep import load_batch, preprocess_file


def keras_reference(path: Path) -> np.ndarray:
    import keras

    x = keras.utils.img_to_array(keras.utils.load_img(str(path), target_size=(224, 224)))
    return keras.applications.resnet50.preprocess_input(x[None])[0]


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_calibration_uses_the_workers_module():
    from resnet_common import preprocess

    assert imageprep.preprocess_bytes is preprocess.preprocess_bytes


def test_photos_match_keras_bit_for_bit(photos):
    assert len(photos) == 5
    for path in photos:
        ours = preprocess_file(path)
        assert ours.dtype == np.float32 and ours.shape == (224, 224, 3)
        np.testing.assert_array_equal(ours, keras_reference(path), err_msg=path.name)


def test_shipped_pixels_are_keras_load_img_bit_for_bit(photos):
    """What the API sends through Redis (uint8 224x224x3) is exactly the image Keras' load_img yields; the worker's
    normalisation of it is exactly preprocess_input."""
    import keras
    from resnet_common import preprocess as pre

    for path in photos:
        pixels = pre.decode_pixels(path.read_bytes())
        assert pixels.dtype == np.uint8 and pixels.nbytes == pre.PIXELS_BYTES == 150528
        np.testing.assert_array_equal(pixels, np.asarray(keras.utils.load_img(str(path), target_size=(224, 224))))
        np.testing.assert_array_equal(pre.normalize_pixels(pixels), keras_reference(path), err_msg=path.name)


def _cmyk_jpeg(path: Path) -> None:
    noise(300, 200).convert("CMYK").save(path, "JPEG", quality=90)


def _l_png(path: Path) -> None:
    noise(97, 333).convert("L").save(path, "PNG")


def _p_gif(path: Path) -> None:
    noise(250, 180).quantize(64).save(path, "GIF")


def _rgba_png(path: Path) -> None:
    img = noise(300, 200).convert("RGBA")
    img.putalpha(Image.fromarray(np.tile((np.arange(300) % 256).astype(np.uint8)[None], (200, 1))))
    img.save(path, "PNG")


def _la_png(path: Path) -> None:
    noise(120, 260).convert("LA").save(path, "PNG")


def _i16_png(path: Path) -> None:
    values = np.random.default_rng(1).integers(0, 1024, (180, 240), dtype=np.uint16)  # many above 255
    Image.fromarray(values).save(path, "PNG")


def _exact_224_jpeg(path: Path) -> None:
    noise(224, 224).save(path, "JPEG", quality=95)


def _animated_gif(path: Path) -> None:
    frames = [noise(260, 200, seed).quantize(32) for seed in (3, 4, 5)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


@pytest.mark.parametrize(
    "make, name, mode",
    [
        (_cmyk_jpeg, "cmyk.jpg", "CMYK"),
        (_l_png, "l.png", "L"),
        (_p_gif, "p.gif", "P"),
        (_rgba_png, "rgba.png", "RGBA"),
        (_la_png, "la.png", "LA"),
        (_i16_png, "i16.png", "I;16"),
        (_exact_224_jpeg, "exact224.jpg", "RGB"),
        (_animated_gif, "animated.gif", "P"),
    ],
)
def test_other_modes_and_sizes_match_keras(tmp_path, make, name, mode):
    path = tmp_path / name
    make(path)
    with Image.open(path) as img:
        assert img.mode == mode, f"fixture did not produce {mode}"
    ours = preprocess_file(path)
    assert ours.shape == (224, 224, 3) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, keras_reference(path))


def test_animated_gif_uses_the_first_frame(tmp_path):
    _animated_gif(tmp_path / "a.gif")
    with Image.open(tmp_path / "a.gif") as img:
        assert img.n_frames == 3
        img.seek(1)
        img.convert("RGB").save(tmp_path / "second.png")
    assert not np.array_equal(preprocess_file(tmp_path / "a.gif"), preprocess_file(tmp_path / "second.png"))


def test_exif_rotation_is_applied_and_equals_keras_on_the_upright_image(tmp_path):
    upright = noise(300, 200, seed=7)
    upright.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"; PNG keeps the pixels lossless
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rotated.png", exif=exif)
    ours = preprocess_file(tmp_path / "rotated.png")
    np.testing.assert_array_equal(ours, keras_reference(tmp_path / "upright.png"))
    assert not np.array_equal(ours, keras_reference(tmp_path / "rotated.png"))  # Keras ignores the tag


def test_load_batch_stacks(photos):
    batch = load_batch(photos[:2])
    assert batch.shape == (2, 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], preprocess_file(photos[1]))
