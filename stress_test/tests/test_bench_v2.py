"""The V2 benchmark's request bodies: FP32 images never repeat (no response-cache hit) and batches keep their shape."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from stress_test.bench_v2 import stamp, unique_tensor, v2_fp32_body


def test_stamps_never_repeat_and_stay_where_preprocess_input_leaves_values():
    stamps = [stamp(n) for n in range(200_000)]  # past 250 * 250: every digit used
    assert len(set(stamps)) == len(stamps)
    assert all(-123.68 <= v <= 151.061 for s in stamps for v in s)


def test_unique_tensors_never_repeat_and_change_one_pixel_only():
    source = np.random.default_rng(0).standard_normal((224, 224, 3)).astype(np.float32) * 60
    sent = [unique_tensor(source) for _ in range(300)]  # past 250: two digits used
    assert len({hashlib.sha256(t.tobytes()).hexdigest() for t in sent}) == len(sent)
    for t in sent:
        assert np.count_nonzero(t != source) <= 3 and t.dtype == np.float32


def test_fp32_body_carries_n_images_in_their_shape():
    images = np.zeros((8, 224, 224, 3), dtype=np.float32)
    for batch in (images[0], images):
        body, headers = v2_fp32_body(batch)
        length = int(headers["Inference-Header-Content-Length"])
        [tensor] = json.loads(body[:length])["inputs"]
        n = batch.size // (224 * 224 * 3)
        assert tensor["shape"] == [n, 224, 224, 3] and tensor["parameters"]["binary_data_size"] == n * 602112
        assert len(body) - length == n * 602112
