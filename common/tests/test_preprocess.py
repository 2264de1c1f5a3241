"""Preprocessing: every mode Pillow can convert, Keras' exact arithmetic, and clean rejections."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from resnet_common import preprocess
from resnet_common.preprocess import CAFFE_MEAN_BGR, InvalidImage, preprocess_bytes
from testkit import photo


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def expected_pixel(rgb: tuple[int, int, int]) -> np.ndarray:
    """caffe mode by hand: BGR order minus the ImageNet mean, in float32."""
    bgr = np.array(rgb[::-1], dtype=np.float32)
    return bgr - np.array(CAFFE_MEAN_BGR, dtype=np.float32)


def test_solid_colour_gives_bgr_minus_mean():
    x = preprocess_bytes(encode(Image.new("RGB", (300, 200), (10, 20, 30)), "PNG"))
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0], expected_pixel((10, 20, 30)))
    np.testing.assert_array_equal(x, np.broadcast_to(x[0, 0], x.shape))


def test_matches_keras_pipeline_step_by_step():
    """Same ops as keras load_img + img_to_array + preprocess_input (caffe), written out independently."""
    data = photo("cat.jpg")
    img = Image.open(io.BytesIO(data)).resize((224, 224), Image.Resampling.NEAREST)
    x = np.asarray(img, dtype=np.float32)[..., ::-1].copy()
    for c, mean in enumerate(CAFFE_MEAN_BGR):
        x[..., c] -= mean
    np.testing.assert_array_equal(preprocess_bytes(data), x)


def test_no_resize_when_already_224():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    x = preprocess_bytes(encode(Image.fromarray(pixels), "PNG"))
    np.testing.assert_array_equal(x + np.array(CAFFE_MEAN_BGR, np.float32), pixels[..., ::-1].astype(np.float32))


def test_normalizing_every_value_of_every_channel_is_keras_arithmetic():
    """The lookup table against Keras' own order of operations (float32 copy, BGR, in-place float subtraction) for
    all 256 values in each channel, written into the given slot of a larger array and nowhere else."""
    pixels = ((np.arange(224 * 224)[:, None] + [0, 85, 170]) % 256).astype(np.uint8).reshape(224, 224, 3)
    keras = pixels.astype(np.float32)[..., ::-1].copy()
    for c, mean in enumerate(CAFFE_MEAN_BGR):
        keras[..., c] -= mean
    batch = np.full((3, 224, 224, 3), np.nan, dtype=np.float32)
    slot = batch[1]
    assert preprocess.normalize_pixels(pixels, slot) is slot
    np.testing.assert_array_equal(slot, keras)
    assert np.isnan(batch[0]).all() and np.isnan(batch[2]).all()
    np.testing.assert_array_equal(preprocess.normalize_pixels(pixels), keras)


def test_nearest_resize_keeps_hard_edges():
    """NEAREST never blends: a black/white split stays exactly black and white (bilinear would not)."""
    img = Image.new("RGB", (100, 100), (0, 0, 0))
    img.paste((255, 255, 255), (50, 0, 100, 100))
    x = preprocess_bytes(encode(img, "PNG")) + np.array(CAFFE_MEAN_BGR, np.float32)
    assert set(np.unique(np.round(x)).tolist()) == {0.0, 255.0}


@pytest.mark.parametrize(
    "mode,colour,fmt",
    [
        ("L", 128, "PNG"),
        ("P", 3, "PNG"),
        ("RGBA", (200, 100, 50, 128), "PNG"),
        ("CMYK", (0, 255, 255, 0), "JPEG"),
        ("1", 1, "PNG"),
        ("LA", (90, 255), "PNG"),
    ],
)
def test_modes_are_converted_like_keras(mode, colour, fmt):
    img = Image.new(mode, (64, 48), colour)
    data = encode(img, fmt)
    want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int32)[0, 0]
    x = preprocess_bytes(data)
    assert x.shape == (224, 224, 3)
    np.testing.assert_allclose(x[100, 100], expected_pixel(tuple(int(v) for v in want)), atol=1e-4)


def test_cmyk_jpeg_red_stays_red():
    x = preprocess_bytes(encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"))
    b, g, r = x[10, 10] + np.array(CAFFE_MEAN_BGR, np.float32)
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_follows_pillow_convert_like_keras():
    """Keras load_img does img.convert('RGB'): Pillow clips 16-bit values above 255 (documented)."""
    arr = np.full((40, 40), 100, dtype=np.uint16)
    arr[:, 20:] = 40000
    data = encode(Image.fromarray(arr), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    x = preprocess_bytes(data) + np.array(CAFFE_MEAN_BGR, np.float32)
    np.testing.assert_allclose(x[100, 10], [100, 100, 100], atol=1e-4)
    np.testing.assert_allclose(x[100, 200], [255, 255, 255], atol=1e-4)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (50, 50), (255, 0, 0)), Image.new("RGB", (50, 50), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 2
    b, g, r = preprocess_bytes(buf.getvalue())[5, 5] + np.array(CAFFE_MEAN_BGR, np.float32)
    assert (r, g, b) == (255, 0, 0)


def test_exif_orientation_turns_the_photo_upright():
    """Stored landscape, left half red; orientation 6 (rotate 90° clockwise) puts red on top."""
    img = Image.new("RGB", (300, 200), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 150, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = preprocess_bytes(encode(img, "JPEG", exif=exif, quality=95)) + np.array(CAFFE_MEAN_BGR, np.float32)
    plain = preprocess_bytes(encode(img, "JPEG", quality=95)) + np.array(CAFFE_MEAN_BGR, np.float32)
    assert rotated[20, 112, 2] > 200 and rotated[200, 112, 0] > 200  # red top, blue bottom
    assert plain[112, 20, 2] > 200 and plain[112, 200, 0] > 200  # untagged: red left, blue right


def test_orientation_1_is_left_alone():
    img = Image.new("RGB", (30, 20), (1, 2, 3))
    exif = Image.Exif()
    exif[0x0112] = 1
    opened = preprocess.open_image(encode(img, "PNG", exif=exif))
    assert preprocess.upright(opened) is opened


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header claims width × height pixels (IHDR rewritten, CRC fixed)."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("side", [50_000, 7_000])  # 2.5 G pixels: Pillow's own guard; 49 M: ours (40 M)
def test_decompression_bomb_is_rejected_before_decoding(side):
    data = png_declaring(side, side)
    assert Image.open(io.BytesIO(png_declaring(100, 100))).size == (100, 100)  # the forgery itself works
    with pytest.raises(InvalidImage, match="too large"):
        preprocess_bytes(data)


def test_pixel_limit_is_configurable():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(InvalidImage, match="100x100 pixels exceeds the limit of 9999"):
        preprocess_bytes(data, max_pixels=9999)
    assert preprocess_bytes(data, max_pixels=10_000).shape == (224, 224, 3)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"this is not an image, just text renamed .jpg", "not a readable image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "not a readable image"),
    ],
)
def test_garbage_is_rejected(data, match):
    with pytest.raises(InvalidImage, match=match):
        preprocess_bytes(data)


def test_truncated_jpeg_is_rejected():
    data = photo("coffee.jpg")
    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        preprocess_bytes(data[: len(data) // 3])


def test_imports_only_numpy_and_pillow():
    """The API, the worker and the conversion CLI all import it: nothing heavier than numpy and Pillow."""
    import ast

    tree = ast.parse(open(preprocess.__file__, encoding="utf-8").read())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert roots <= {"__future__", "io", "numpy", "PIL"}


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "WEBP"])
def test_only_the_upload_formats_reach_a_decoder(fmt):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buf, fmt)
    with pytest.raises(InvalidImage):
        preprocess_bytes(buf.getvalue())
