"""Phone-size photos for the 12 MP workload: the repo's test photos (tests/data/photos, from PyPI packages)
upscaled to 4000 × 3000, with sensor-like noise, saved as JPEG quality 90 — 2–3 MB each, like a phone's.

Made once and cached in .run/phone-photos (a few seconds); `python -m stress_test.phone_photos` prints sizes.
Noise: per-pixel Gaussian, luminance-dependent like shot noise (σ ≈ 2 + 0.03 × level), shared by the three
channels at 70% (sensor noise is mostly luma after demosaicing) — so the JPEG carries real high-frequency detail.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from stress_test.photos import PHOTOS_DIR, REPO, photo_paths

SIZE = (4000, 3000)
QUALITY = 90
CACHE_DIR = REPO / ".run" / "phone-photos"
VERSION = "v1"  # bump when the recipe changes


def phone_photo(source: Path, seed: int) -> bytes:
    """One 12 MP JPEG from a small photo: centre crop to 4:3, bicubic upscale, sensor-like noise, quality 90."""
    from PIL import Image

    with Image.open(source) as img:
        img = img.convert("RGB")
        w, h = img.size
        if w * 3 > h * 4:
            crop = (w - h * 4 // 3) // 2
            img = img.crop((crop, 0, crop + h * 4 // 3, h))
        else:
            crop = (h - w * 3 // 4) // 2
            img = img.crop((0, crop, w, crop + w * 3 // 4))
        big = np.asarray(img.resize(SIZE, Image.Resampling.BICUBIC), dtype=np.float32)
    rng = np.random.default_rng(seed)
    sigma = 2.0 + 0.03 * big.mean(axis=2, keepdims=True)
    luma = rng.standard_normal((SIZE[1], SIZE[0], 1), dtype=np.float32)
    chroma = rng.standard_normal(big.shape, dtype=np.float32)
    noisy = big + sigma * (0.7 * luma + 0.3 * chroma)
    out = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def phone_photos(folder: Path = PHOTOS_DIR, cache: Path = CACHE_DIR) -> list[tuple[str, bytes]]:
    """(name, JPEG bytes) of every test photo at 12 MP, made once and cached."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for i, src in enumerate(photo_paths(folder)):
        path = cache / f"{src.stem}-12mp-{VERSION}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(phone_photo(src, seed=i))
            tmp.replace(path)
        out.append((path.name, path.read_bytes()))
    return out


if __name__ == "__main__":
    for name, data in phone_photos():
        print(f"{name}: {len(data) / 2**20:.2f} MiB")
