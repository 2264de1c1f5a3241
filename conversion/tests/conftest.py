"""Shared fixtures: conversion/ on sys.path (flat imports, as when running conversion/convert.py) and one
converted ResNet50 with random weights (seed 0) per session, reusing <repo>/model/artifacts when its card
already matches (`make test` converts there first)."""
from __future__ import annotations

import subprocess
import sys
import os
from pathlib import Path

import pytest

CONVERSION = Path(__file__).resolve().parent.parent
REPO = CONVERSION.parent
PHOTOS = REPO / "tests" / "data" / "photos"
sys.path.insert(0, str(CONVERSION))


def run_cli(script: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CONVERSION / script), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    from imageprep import list_images

    found = list_images(PHOTOS)
    assert len(found) >= 3, f"test photos missing in {PHOTOS}"
    return found


@pytest.fixture(scope="session")
def random0_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder converted from random weights, seed 0."""
    shared = Path(os.environ.get("MODEL_DIR") or REPO / "model" / "artifacts")  # what `make test` converted
    if run_cli("card_status.py", "--weights", "random:0", "--model-dir", str(shared), "-q").returncode == 0:
        return shared
    out = tmp_path_factory.mktemp("random0")
    done = run_cli("convert.py", "--weights", "random", "--seed", "0", "--out-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out
