"""The worker's own preprocessing (resnet_common.preprocess), for INT8 calibration and agreement checks: calibration
must see exactly what the worker feeds the model, so there is one implementation, in the package the services share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from resnet_common.preprocess import preprocess_bytes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


def preprocess_file(path: str | Path) -> np.ndarray:
    """One image file → float32 (224, 224, 3), exactly as the worker preprocesses uploaded bytes."""
    return preprocess_bytes(Path(path).read_bytes())


def list_images(folder: str | Path) -> list[Path]:
    """Image files in a folder, sorted by name so runs are reproducible."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_batch(paths: list[Path]) -> np.ndarray:
    """Files → float32 NHWC batch for the ONNX graph's `input`."""
    return np.stack([preprocess_file(p) for p in paths]).astype(np.float32, copy=False)
