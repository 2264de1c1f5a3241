"""What an INT8 model must show before it is published: the fixed hold-out split of the calibration folder and the
minimum top-1 agreement with fp32 on it (INT8_MIN_AGREEMENT, overridden by INT8_FORCE=1). No heavy imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HOLDOUT_EVERY = 4  # every 4th image by sorted name is held out of calibration to measure agreement on
DEFAULT_MIN_AGREEMENT = 0.98


class AgreementTooLow(Exception):
    """INT8 top-1 agreement with fp32 on the held-out images is below the minimum: the model is not published."""


def split_holdout(images: list[Path], every: int = HOLDOUT_EVERY) -> tuple[list[Path], list[Path]]:
    """(calibration, held out) from a folder's images: sorted by name, images[every-1::every] held out; a folder of
    2 to every-1 images holds out its last one. Fewer than 2 images cannot be split."""
    images = sorted(images, key=lambda p: p.name)
    if len(images) < 2:
        raise ValueError(f"the calibration folder needs at least 2 images to hold one out, it has {len(images)}")
    held = images[every - 1 :: every] or images[-1:]
    return [p for p in images if p not in held], held


def check_agreement(found: dict[str, Any], minimum: float, force: bool) -> None:
    """Raise AgreementTooLow, naming the figure, when top-1 agreement is below `minimum` and not forced."""
    top1 = found["top1_agreement"]
    if top1 >= minimum:
        return
    message = (
        f"INT8 top-1 agreement with fp32 is {top1:.3f} on {found['images']} held-out inputs "
        f"({', '.join(found.get('held_out', []))} and their mirror images), below INT8_MIN_AGREEMENT={minimum}"
    )
    if not force:
        raise AgreementTooLow(f"{message}: not published (INT8_FORCE=1 publishes it anyway)")
    print(f"WARNING: {message}; published because INT8_FORCE=1", flush=True)
