"""Validation before enqueueing: every bad input gets a reason; every mode Pillow can convert passes."""

import os

import pytest

import images
from helpers import PHOTOS
from errors import InvalidImage
from testkit.images import good_images, png_bomb


def _photo(name="cat.jpg") -> bytes:
    with open(os.path.join(PHOTOS, name), "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("name", ["cat.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg", "grace_hopper.jpg"])
def test_real_photos_pass(name):
    assert images.decode(_photo(name), "upload").pixels.shape == (224, 224, 3)


@pytest.mark.parametrize("name", sorted(good_images()))
def test_convertible_modes_pass(name):
    assert images.decode(good_images()[name], "upload").pixels.shape == (
        224,
        224,
        3,
    )  # modes are the worker's job, not a reason to refuse


BAD = {
    "empty": (b"", "empty"),
    "text renamed .jpg": (b"hello, I am not an image\n" * 10, "not an image"),
    "pdf renamed .jpg": (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n", "not an image"),
    "jpeg header only": (b"\xff\xd8\xff\xe0" + b"\x00" * 10, ""),
    "truncated jpeg": (None, "truncated"),
    "bomb png 50000x50000": (png_bomb(), "too many pixels"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_are_rejected_with_a_reason(case):
    data, reason = BAD[case]
    if data is None:
        full = _photo()
        data = full[: len(full) // 2]
    with pytest.raises(InvalidImage) as info:
        images.decode(data, "upload")
    assert reason in str(info.value)
    assert str(info.value)  # always a message


def test_bomb_between_one_and_two_times_the_limit_is_rejected_without_decoding(monkeypatch):
    """Pillow only warns in this range; the explicit check rejects before load()."""
    monkeypatch.setenv("MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(InvalidImage, match="40x40"):
        images.decode(png_bomb(40, 40), "upload")  # 1600 px: over 1x, under 2x the limit


def test_limit_comes_from_settings(monkeypatch):
    data = good_images()["rgb.jpg"]  # 64x48 = 3072 px
    monkeypatch.setenv("MAX_IMAGE_PIXELS", "3072")
    assert images.decode(data, "upload").pixels.shape == (224, 224, 3)
    monkeypatch.setenv("MAX_IMAGE_PIXELS", "3071")
    with pytest.raises(InvalidImage):
        images.decode(data, "upload")


def test_bmp_is_not_an_allowed_format():
    from PIL import Image
    from testkit.images import encode

    with pytest.raises(InvalidImage, match="not an image"):
        images.decode(encode(Image.new("RGB", (8, 8)), "BMP"), "upload")
