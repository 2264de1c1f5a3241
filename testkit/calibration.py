"""A calibration folder built to make INT8 disagree with fp32: flat grey images calibrate, real photos are held out.

quantize_policy.split_holdout holds out every 4th image by sorted name; here those are photos, all the others flat
grey, so the activation ranges are calibrated on inputs with almost no range and the held-out photos saturate.
On the seeded random:1 model this gives a top-1 agreement far below 0.98, deterministically.
"""

from __future__ import annotations

from pathlib import Path

from testkit.paths import PHOTOS

HELD_OUT_PHOTOS = ("astronaut.jpg", "cat.jpg", "coffee.jpg")


def write_disagreeing_calibration_set(folder: Path) -> list[str]:
    """Fill `folder`; returns the held-out file names."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    held = []
    for group, photo in enumerate(HELD_OUT_PHOTOS):
        for i in range(3):
            grey = np.full((64, 64, 3), 120 + 4 * group + i, np.uint8)
            Image.fromarray(grey).save(folder / f"{group}{i}-grey.png")
        name = f"{group}9-{photo}"
        (folder / name).write_bytes((PHOTOS / photo).read_bytes())
        held.append(name)
    return held
