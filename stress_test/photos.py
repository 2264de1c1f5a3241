"""The shared test photos as raw bytes (for HTTP load) and as preprocessed model input (for raw benchmarks)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PHOTOS_DIR = Path(os.environ.get("PHOTOS_DIR", REPO / "tests" / "data" / "photos"))
IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def photo_paths(folder: Path = PHOTOS_DIR) -> list[Path]:
    """JPEG/PNG files of the folder, sorted so every run sends the same sequence."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        raise SystemExit(f"no photos in {folder}")
    return paths


def photo_bytes(folder: Path = PHOTOS_DIR) -> list[tuple[str, bytes]]:
    """(file name, content) pairs, read once so load generators do no disk I/O per request."""
    return [(p.name, p.read_bytes()) for p in photo_paths(folder)]


def preprocess(data: bytes) -> np.ndarray:
    """Keras load_img(target_size=(224, 224)) + resnet50.preprocess_input (caffe mode), as one HWC float32."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB").resize((224, 224), Image.NEAREST)
    return np.asarray(rgb, dtype=np.float32)[..., ::-1] - IMAGENET_MEAN_BGR


def batch_of(size: int, folder: Path = PHOTOS_DIR) -> np.ndarray:
    """A [size, 224, 224, 3] batch cycling through the photos (real pixels, so INT8 sees real ranges)."""
    images = [preprocess(data) for _, data in photo_bytes(folder)]
    return np.ascontiguousarray(np.stack([images[i % len(images)] for i in range(size)]))
