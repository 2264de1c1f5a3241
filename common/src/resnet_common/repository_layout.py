"""A model repository on disk: <repository>/<name>/<version>/, each version a folder named by its number that
holds a model card (docs/model-repository.md). The one reading of that layout, shared by the converter that
publishes versions, the workers that serve them, the API that pins them and the tools that find the newest.

A version number is ASCII digits. str.isdigit() also accepts '²', which int() refuses, and other scripts' digits,
which int() reads: '٣' would be version 3, served from a folder nobody named 3.
"""

from __future__ import annotations

import os
from pathlib import Path

CARD_NAME = "model_card.json"


def version_number(text: str) -> int | None:
    """The number a folder name, a pin or a heartbeat field names; None when `text` is not ASCII digits."""
    return int(text) if text.isascii() and text.isdigit() else None


def published_versions(model_root: str | Path) -> list[int]:
    """The versions under `model_root` (<repository>/<name>), ascending: folders named by a number that hold a
    model card (a version being written has a temporary name starting with '.'); [] when it cannot be read."""
    try:
        entries = list(os.scandir(model_root))
    except OSError:
        return []
    found = ((version_number(e.name), e.path) for e in entries)
    return sorted(v for v, path in found if v is not None and os.path.isfile(os.path.join(path, CARD_NAME)))


def newest_version_dir(model_root: str | Path) -> Path | None:
    """The folder of the newest published version under `model_root`; None when there is none."""
    found = published_versions(model_root)
    return Path(model_root) / str(found[-1]) if found else None
