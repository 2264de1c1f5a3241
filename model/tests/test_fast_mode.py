"""PREPROCESS=fast against keras mode on 12 MP photos, through the real converted model."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

import settings
from classifier import Classifier
from helpers import photo
from resnet_common.preprocess import decode_pixels, normalize_pixels


def twelve_mp(name: str, seed: int) -> bytes:
    """A test photo upscaled to 4000 x 3000 with sensor-like noise, JPEG quality 90 (like a phone's)."""
    img = Image.open(io.BytesIO(photo(name))).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    noisy = np.asarray(img, dtype=np.int16) + np.random.default_rng(seed).integers(
        -6, 7, (3000, 4000, 1), dtype=np.int16
    )
    out = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_fast_mode_agrees_with_keras_mode_at_12_mp(real_model_dir, labels_file):
    cfg = settings.load(MODEL_DIR=real_model_dir, LABELS_FILE=labels_file, MODEL_VARIANT="fp32")
    clf = Classifier(cfg, threads=1)
    clf.initialize()
    photos = [twelve_mp(name, i) for i, name in enumerate(("cat.jpg", "coffee.jpg"))]
    keras = [decode_pixels(p, mode="keras") for p in photos]
    fast = [decode_pixels(p, mode="fast") for p in photos]
    for k, f in zip(keras, fast):
        diff = np.abs(k.astype(int) - f.astype(int)).mean()
        assert 0 < diff < 8, diff  # a different decode (DCT-scaled), of the same picture
    h = clf.handle
    logits = {}
    for mode, pixels in (("keras", keras), ("fast", fast)):
        x = np.stack([normalize_pixels(p) for p in pixels])
        logits[mode] = h.session.run(["logits"], {h.input_name: x})[0]
    a, b = logits["keras"], logits["fast"]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.99, cosine
    assert (a.argmax(1) == b.argmax(1)).all()
