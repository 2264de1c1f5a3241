"""Where the test inputs live: the repository, its sample photos and the converted model `make test` builds."""

from __future__ import annotations

import os
from pathlib import Path

from resnet_common.repository_layout import newest_version_dir
from resnet_common.settings import SharedSettings

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "tests" / "data" / "photos"


def model_root() -> Path:
    """MODEL_REPOSITORY/MODEL_NAME as `make run` reads them (default model/repository/resnet50)."""
    repository = Path(os.environ.get("MODEL_REPOSITORY") or REPO / "model" / "repository")
    return repository / (os.environ.get("MODEL_NAME") or SharedSettings.MODEL_NAME)


def converted_model_dir() -> Path:
    """The real converted ResNet50: MODEL_DIR (set by `make test` to the newest version of .run/test-repository),
    else the newest version in MODEL_REPOSITORY (default model/repository, what `make run` serves)."""
    if os.environ.get("MODEL_DIR"):
        return Path(os.environ["MODEL_DIR"])
    root = model_root()
    return newest_version_dir(root) or root / "1"


def photo(name: str = "cat.jpg") -> bytes:
    """Bytes of one of the sample photos."""
    return (PHOTOS / name).read_bytes()


def seeded_model_cache(seed: int) -> Path:
    """Where a test keeps the conversion of `random:<seed>` weights for the next sessions (a flat model folder that
    scripts/ensure_model.sh may reuse through MODEL_REUSE_FROM): converting costs minutes of TensorFlow."""
    return REPO / ".run" / "test-cache" / f"random-{seed}"
