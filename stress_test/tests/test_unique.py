"""Unique bytes per request decode to the same pixels."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from stress_test.photos import photo_bytes
from stress_test.unique import unique


def test_tagged_copies_differ_in_bytes_not_in_pixels():
    name, data = photo_bytes()[0]
    png = io.BytesIO()
    Image.open(io.BytesIO(data)).save(png, "PNG")
    for original in (data, png.getvalue()):
        a, b = unique(original, "run-1"), unique(original, "run-2")
        assert len({original, a, b}) == 3
        pixels = [np.asarray(Image.open(io.BytesIO(x)).convert("RGB")) for x in (original, a, b)]
        np.testing.assert_array_equal(pixels[0], pixels[1])
        np.testing.assert_array_equal(pixels[0], pixels[2])
