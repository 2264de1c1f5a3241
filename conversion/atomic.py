"""Atomic file writes (temp file in the same folder, then rename) so readers never see half a file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Iterator


@contextlib.contextmanager
def scratch_path(beside: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp path in `beside`'s folder (same filesystem, so os.replace is atomic); removed on exit if still there.

    `suffix` matters for writers that check the extension (Keras wants `.weights.h5`)."""
    beside = Path(beside)
    beside.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{beside.name}.", suffix=suffix, dir=beside.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
    finally:
        tmp_path.unlink(missing_ok=True)


def publish(tmp: Path, dest: str | Path) -> None:
    """Rename a finished temp file over `dest` (readable by others: mkstemp creates files as 0600)."""
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside `dest`; on success it is renamed over `dest`, on error it is removed."""
    with scratch_path(dest, suffix) as tmp:
        yield tmp
        publish(tmp, dest)


def atomic_write_text(dest: str | Path, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(dest: str | Path, data: Any) -> None:
    atomic_write_text(dest, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
