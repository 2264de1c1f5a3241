"""What the conversion tests share (imported as `helpers`, never from conftest): paths and running the CLIs."""

from __future__ import annotations

import subprocess
import sys

from testkit import PHOTOS, REPO

CONVERSION = REPO / "conversion"
__all__ = ["CONVERSION", "PHOTOS", "REPO", "run_cli"]


def run_cli(script: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run conversion/<script> as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, str(CONVERSION / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )
