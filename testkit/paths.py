"""Where the test inputs live: the repository, its sample photos and the converted model `make test` builds."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "tests" / "data" / "photos"


def converted_model_dir() -> Path:
    """The real converted ResNet50: MODEL_DIR (set by `make test`) or the folder `make run` serves."""
    return Path(os.environ.get("MODEL_DIR") or REPO / "model" / "artifacts")


def photo(name: str = "cat.jpg") -> bytes:
    """Bytes of one of the sample photos."""
    return (PHOTOS / name).read_bytes()
