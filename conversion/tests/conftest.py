"""Shared fixtures: one converted ResNet50 with random weights (seed 0) per session, reusing the folder `make test`
converted (MODEL_DIR) when its card already matches. conversion/, the repository root and model/ (the worker, checked
against Keras) are on sys.path (pytest.ini)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import PHOTOS, run_cli
from testkit import converted_model_dir


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    from imageprep import list_images

    found = list_images(PHOTOS)
    assert len(found) >= 3, f"test photos missing in {PHOTOS}"
    return found


@pytest.fixture(scope="session")
def random0_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder converted from random weights, seed 0."""
    shared = converted_model_dir()
    if run_cli("card_status.py", "--weights", "random:0", "--model-dir", str(shared), "-q").returncode == 0:
        return shared
    out = tmp_path_factory.mktemp("random0")
    done = run_cli("convert.py", "--weights", "random", "--seed", "0", "--out-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out
