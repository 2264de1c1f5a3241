"""The V2 benchmark's request bodies: FP32 images never repeat (no response-cache hit) and batches keep their shape."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from stress_test.bench_v2 import UniqueFp32Bodies, stamp, v2_fp32_body


def test_stamps_never_repeat_and_stay_where_preprocess_input_leaves_values():
    stamps = [stamp(n) for n in range(200_000)]  # past 250 * 250: every digit used
    assert len(set(stamps)) == len(stamps)
    assert all(-123.68 <= v <= 151.061 for s in stamps for v in s)


def test_unique_fp32_bodies_never_repeat_and_change_each_image_first_pixel_only():
    rng = np.random.default_rng(0)
    sources = [rng.standard_normal((224, 224, 3)).astype(np.float32) * 60 for _ in range(2)]
    bodies = UniqueFp32Bodies(sources, batch=2)
    length = int(bodies.headers["Inference-Header-Content-Length"])
    digests, first_pixels = set(), set()
    for n in range(300):  # 600 images: past 250, two digits of the stamp used
        body, _ = bodies.next()
        digests.add(hashlib.sha256(body).hexdigest())
        assert json.loads(body[:length])["inputs"][0]["shape"] == [2, 224, 224, 3]
        images = np.frombuffer(bytes(body[length:]), dtype="<f4").reshape(2, 224, 224, 3)
        for k, image in enumerate(images):
            assert np.array_equal(image[1:], sources[(n + k) % 2][1:]) and np.array_equal(
                image[0, 1:], sources[(n + k) % 2][0, 1:]
            )
            first_pixels.add(tuple(image[0, 0]))
    assert len(digests) == 300 and len(first_pixels) == 600


def test_fp32_body_carries_n_images_in_their_shape():
    images = np.zeros((8, 224, 224, 3), dtype=np.float32)
    for batch in (images[0], images):
        body, headers = v2_fp32_body(batch)
        length = int(headers["Inference-Header-Content-Length"])
        [tensor] = json.loads(body[:length])["inputs"]
        n = batch.size // (224 * 224 * 3)
        assert tensor["shape"] == [n, 224, 224, 3] and tensor["parameters"]["binary_data_size"] == n * 602112
        assert len(body) - length == n * 602112
