"""The class names a model version answers with: ImageNet's by default, or a user's (LABELS) for a fine-tuned head.

Every version folder carries its class index in Keras' format ({"0": [id, name], …}, the file the card's `labels`
names); the workers answer with its names, and its length is the number of classes the ONNX head must have.

    LABELS=~/flowers.txt        one name per line, in the head's output order (class 0 first)
    LABELS=~/flowers.json       a Keras class index, as keras.applications' own imagenet_class_index.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from resnet_common.class_index import index_names

from atomic import atomic_write_text
from make_class_index import DEFAULT_OUT as IMAGENET_INDEX
from make_class_index import render
from weights import WeightsError

INDEX_NAME = "class_index.json"  # in each version folder, named by the card's `labels`


class LabelsError(WeightsError):
    """A LABELS file the service cannot use; the message says what is wrong with it."""


def add_labels_option(parser: argparse.ArgumentParser) -> None:
    """`--labels PATH`, by default the LABELS environment variable (what `make model LABELS=…` passes on)."""
    parser.add_argument(
        "--labels",
        type=Path,
        default=Path(os.environ["LABELS"]) if os.environ.get("LABELS") else None,
        help="the head's class names (LABELS): one per line in its output order, or a Keras class index (.json). "
        "Default: the 1000 ImageNet classes",
    )


def load_class_index(path: Path | None = None) -> dict[str, list[str]]:
    """The class index of a LABELS file (JSON index or text), or ImageNet's when `path` is None."""
    path = Path(path) if path is not None else IMAGENET_INDEX
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (editors on Windows) is not a name
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"LABELS={path} cannot be read: {exc}") from None
    index = _from_json(path, text) if path.suffix == ".json" else _from_lines(path, text)
    if not index:
        raise LabelsError(f"LABELS={path} names no class")
    return index


def _from_lines(path: Path, text: str) -> dict[str, list[str]]:
    names = [line.strip() for line in text.rstrip("\n\r ").splitlines()] if text.strip() else []
    blank = [n for n, name in enumerate(names, 1) if not name]
    if blank:
        raise LabelsError(f"LABELS={path}: line {blank[0]} is empty; give one class name per line")
    return {str(i): [str(i), name] for i, name in enumerate(names)}


def _from_json(path: Path, text: str) -> dict[str, list[str]]:
    try:
        raw: Any = json.loads(text)
    except ValueError as exc:
        raise LabelsError(f"LABELS={path} is not JSON: {exc}") from None
    try:
        index_names(raw, f"LABELS={path}")
    except ValueError as exc:
        raise LabelsError(str(exc)) from None
    return {str(i): raw[str(i)] for i in range(len(raw))}


def names(index: dict[str, list[str]]) -> list[str]:
    return index_names(index, "the class index")


def names_digest(index: dict[str, list[str]]) -> str:
    """sha256 over the names in class order: what the card records to tell one LABELS from another."""
    return hashlib.sha256("\n".join(names(index)).encode()).hexdigest()


def write_class_index(out_dir: Path, index: dict[str, list[str]]) -> dict[str, Any]:
    """Write the index into the model folder (a new file: a hard-linked older one stays as it is); returns the
    card's fields for it."""
    atomic_write_text(out_dir / INDEX_NAME, render(index))
    return {"labels": INDEX_NAME, "classes": len(index), "labels_sha256": names_digest(index)}
