"""Pure Pillow/numpy replica of keras.utils.load_img(path, target_size=(224, 224)) + resnet50.preprocess_input.

Used for INT8 calibration and agreement, so calibration sees exactly what the worker feeds the model.
(model/preprocess.py did not exist when this was written; tests/test_imageprep.py pins this copy to Keras.)
EXIF orientation is applied first, as the model card's preprocessing says (a no-op for images without it).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SIZE = (224, 224)  # (width, height) for Pillow
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


def load_rgb(data: bytes) -> np.ndarray:
    """Decode, orient, RGB, resize with NEAREST (Keras' default) -> float32 HWC in 0..255."""
    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != SIZE:
            img = img.resize(SIZE, Image.NEAREST)
        return np.asarray(img, dtype=np.float32)


def caffe_preprocess(rgb: np.ndarray) -> np.ndarray:
    """RGB -> BGR, minus the ImageNet mean, in float32 (same operation order as Keras)."""
    return rgb[..., ::-1] - CAFFE_MEAN_BGR


def preprocess_file(path: str | Path) -> np.ndarray:
    return caffe_preprocess(load_rgb(Path(path).read_bytes()))


def list_images(folder: str | Path) -> list[Path]:
    """Image files in a folder, sorted by name so runs are reproducible."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_batch(paths: list[Path]) -> np.ndarray:
    return np.stack([preprocess_file(p) for p in paths]).astype(np.float32)
