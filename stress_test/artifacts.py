"""Find the converted models, the model card and the Keras weights they were made from."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from resnet_common.repository_layout import CARD_NAME, newest_version_dir

from testkit.paths import model_root

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILES = {"fp32": "resnet50.onnx", "int8": "resnet50.int8.onnx"}


def model_dir(override: str | None = None) -> Path:
    """--model-dir, else MODEL_DIR, else the newest version in the model repository (MODEL_REPOSITORY, default
    model/repository/resnet50/<version>: what `make model` adds and `make run` serves), else model/artifacts."""
    if override or os.environ.get("MODEL_DIR"):
        return Path(override or os.environ["MODEL_DIR"])
    return newest_version_dir(model_root()) or REPO / "model" / "artifacts"


def card(folder: Path) -> dict[str, Any]:
    """model_card.json, or {} when the conversion has not written one."""
    path = folder / CARD_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def variants(folder: Path) -> dict[str, Path]:
    """Variant name -> ONNX file, for every variant the card lists (or the default names) that exists on disk."""
    listed = {k: v.get("file", DEFAULT_FILES.get(k, "")) for k, v in card(folder).get("variants", {}).items()}
    found = {name: folder / file for name, file in {**DEFAULT_FILES, **listed}.items() if file}
    return {name: path for name, path in found.items() if path.is_file()}


def keras_weights(folder: Path) -> Path | None:
    """The Keras weights file the ONNX model was converted from (card first, then resnet50.*.weights.h5)."""
    weights = card(folder).get("weights", {})
    for candidate in (weights.get("path"), weights.get("file")):
        if candidate:
            path = Path(candidate) if Path(candidate).is_absolute() else folder / candidate
            if path.is_file():
                return path
    seeded = sorted(folder.glob("resnet50*.weights.h5"))
    return seeded[0] if seeded else None


def card_gflops(folder: Path) -> float | None:
    """The conversion's own FLOP count, used as a cross-check (and fallback) for ours."""
    return card(folder).get("variants", {}).get("fp32", {}).get("gflops_per_image")
