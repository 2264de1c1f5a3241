"""The worker's own preprocessing (model/preprocess.py), for INT8 calibration and agreement checks.

One implementation only: calibration must see exactly what the worker feeds the model, so this module loads
model/preprocess.py by file path (it imports only numpy and Pillow) instead of keeping a copy. Loaded under a
private module name and without touching sys.path, so nothing in model/ can shadow conversion's modules.
The Docker convert stage copies model/ next to conversion/, so the relative path holds there too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

PREPROCESS_PATH = Path(__file__).resolve().parent.parent / "model" / "preprocess.py"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}
_MODULE_NAME = "_worker_preprocess"


def _load_preprocess() -> ModuleType:
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    if not PREPROCESS_PATH.is_file():
        raise ImportError(f"the worker's preprocessing is missing: {PREPROCESS_PATH}")
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, PREPROCESS_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module  # registered first so dataclass/pickle lookups by module name work
    spec.loader.exec_module(module)
    return module


preprocess = _load_preprocess()


def preprocess_file(path: str | Path) -> np.ndarray:
    """One image file → float32 (224, 224, 3), exactly as the worker preprocesses uploaded bytes."""
    return preprocess.preprocess_bytes(Path(path).read_bytes())


def list_images(folder: str | Path) -> list[Path]:
    """Image files in a folder, sorted by name so runs are reproducible."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_batch(paths: list[Path]) -> np.ndarray:
    """Files → float32 NHWC batch for the ONNX graph's `input`."""
    return np.stack([preprocess_file(p) for p in paths]).astype(np.float32, copy=False)
