"""Decode once in the API: the pixels, the fast mode, the decode memory budget."""

import io
import resource
import threading
import time

import numpy as np
import pytest
from PIL import Image

import decode_budget
import images
from resnet_common import preprocess
from errors import DecodeBusy, InvalidImage
from testkit.images import encode


def big_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 100, width // 100, 3), dtype=np.uint8)
    return encode(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR), "JPEG", quality=90)


def test_upload_carries_keras_pixels_and_its_hash(photo):
    import hashlib

    data = photo("cat.jpg")
    upload = images.decode(data, "n.jpg")
    assert upload.name == "n.jpg" and upload.sha256 == hashlib.sha256(data).hexdigest() and upload.mode == "keras"
    assert upload.pixels.dtype == np.uint8 and upload.pixels.shape == (224, 224, 3)
    keras_like = Image.open(io.BytesIO(data)).convert("RGB").resize((224, 224), Image.Resampling.NEAREST)
    np.testing.assert_array_equal(upload.pixels, np.asarray(keras_like))


def test_fast_mode_decodes_a_jpeg_at_the_smallest_dct_scale_still_224(monkeypatch):
    data = big_jpeg()
    sizes = []
    real_load = preprocess.load_rgb

    def spy(img, *a, **kw):
        sizes.append(img.size)
        return real_load(img, *a, **kw)

    monkeypatch.setattr(preprocess, "load_rgb", spy)
    monkeypatch.setenv("PREPROCESS", "fast")
    upload = images.decode(data, "big.jpg")
    assert upload.mode == "fast" and sizes == [(500, 375)]  # 4000x3000 at 1/8 (1/16 would be under 224)
    assert images.decode(big_jpeg(1000, 600), "x.jpg", mode="fast") is not None and sizes[-1] == (500, 300)
    monkeypatch.setenv("PREPROCESS", "keras")
    images.decode(data, "big.jpg")
    assert sizes[-1] == (4000, 3000)


def test_fast_mode_leaves_png_alone_and_still_rejects_truncation(photo):
    png = encode(Image.new("RGB", (600, 400), (1, 2, 3)), "PNG")
    np.testing.assert_array_equal(images.decode(png, "a.png", "fast").pixels, images.decode(png, "a.png").pixels)
    data = photo("coffee.jpg")
    with pytest.raises(InvalidImage, match="truncated"):
        images.decode(data[: len(data) // 2], "t.jpg", mode="fast")


def test_unknown_mode_is_a_configuration_error(photo, monkeypatch):
    monkeypatch.setenv("PREPROCESS", "turbo")
    with pytest.raises(ValueError, match="PREPROCESS"):
        images.decode(photo(), "x.jpg")


@pytest.mark.parametrize("mode, per_pixel", [("RGB", 4), ("L", 5), ("P", 5), ("RGBA", 8), ("I;16", 6)])
def test_decode_memory_is_counted_by_mode(mode, per_pixel):
    img = Image.new(mode, (100, 50))
    assert preprocess.decode_memory(img) == 100 * 50 * per_pixel


def test_an_image_over_the_whole_budget_is_a_400(monkeypatch):
    monkeypatch.setenv("DECODE_MEMORY_MB", "1")
    with pytest.raises(InvalidImage, match="decode budget"):
        images.decode(encode(Image.new("RGB", (1000, 1000)), "PNG"), "x.png")  # 4 MB to decode


def test_budget_waits_then_sheds():
    budget = decode_budget.DecodeBudget(100)
    budget.acquire(80, timeout=0)
    started = time.monotonic()
    with pytest.raises(decode_budget.BudgetBusy):
        budget.acquire(30, timeout=0.2)
    assert 0.15 < time.monotonic() - started < 2
    threading.Timer(0.1, budget.release, args=(80,)).start()
    budget.acquire(30, timeout=5)  # released meanwhile: admitted
    assert budget.used == 30


def _second_decode_faults_per_page(side: int = 1500) -> float:
    """Minor page faults of this thread while decoding a side × side JPEG again, right after a first decode of it,
    per page of the pixels as Pillow holds them (4 bytes per RGB pixel)."""
    data = big_jpeg(side, side)
    images.decode(data, "x.jpg")
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    images.decode(data, "x.jpg")
    return (resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) / (side * side * 4 // resource.getpagesize())


def test_a_reservation_waits_for_the_limit_or_until_the_deadline_whichever_is_sooner():
    assert decode_budget.wait_s(5.0, None) == 5.0
    assert 0.5 < decode_budget.wait_s(5.0, time.time() + 1) <= 1.0
    assert decode_budget.wait_s(0.2, time.time() + 60) == 0.2
    assert decode_budget.wait_s(5.0, time.time() - 1) == 0.0  # past the deadline: no wait, never a negative one


def test_a_decode_reuses_the_memory_the_last_one_freed(monkeypatch):
    monkeypatch.setenv("DECODE_CACHE_MB", "64")
    assert _second_decode_faults_per_page() < 0.25
    assert Image.core.get_blocks_max() == 64 * 2**20 // Image.core.get_block_size()


def test_without_the_cache_every_decode_faults_its_memory_in_again(monkeypatch):
    monkeypatch.setenv("DECODE_CACHE_MB", "0")
    assert _second_decode_faults_per_page() >= 1
    assert Image.core.get_blocks_max() == 0


def test_busy_budget_is_a_503_with_retry_after(monkeypatch):
    monkeypatch.setenv("DECODE_MEMORY_MB", "7")
    monkeypatch.setenv("DECODE_WAIT_S", "0.1")
    held = decode_budget.budget(7)
    held.acquire(5 * 2**20, timeout=0)
    try:
        with pytest.raises(DecodeBusy) as info:
            images.decode(encode(Image.new("RGB", (1000, 1000)), "PNG"), "x.png")
        assert info.value.status == 503
    finally:
        held.release(5 * 2**20)
    assert held.used == 0
    images.decode(encode(Image.new("RGB", (1000, 1000)), "PNG"), "x.png")  # fits again
    assert held.used == 0  # released after the decode
