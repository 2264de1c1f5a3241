"""The `explain` request flag and the `heatmap` a worker answers with (docs/queue-protocol.md).

`explain=1` (query string or form field) asks for the class activation map of the predicted class: a grid of
floats in [0, 1] computed by the worker from the same inference. Accepted values are exactly 0, 1, true, false.
"""

import math
from typing import Any

from errors import PredictionFailed

TRUE, FALSE = ("1", "true"), ("0", "false")
MAX_GRID = 64  # rows / columns a heatmap may have (ResNet50 at 224 px gives 7 x 7)


def parse_flag(raw: str | None) -> bool:
    """None (absent) → False; "1"/"true" → True; "0"/"false" → False; anything else raises ValueError."""
    if raw is None or raw in FALSE:
        return False
    if raw in TRUE:
        return True
    raise ValueError("explain must be one of 0, 1, true, false")


def heatmap_of(result: Any) -> list[list[float]]:
    """The validated heatmap carried by a prediction; PredictionFailed when the worker could not make one."""
    heatmap = getattr(result, "heatmap", None)
    if heatmap is None:
        raise PredictionFailed(
            "the served model cannot explain its answers (no feature map output): "
            "convert it again with conversion/convert.py"
        )
    if not valid(heatmap):
        raise PredictionFailed("the worker answered with a malformed heatmap")
    return [[float(v) for v in row] for row in heatmap]


def valid(heatmap: Any) -> bool:
    """A non-empty rectangular grid (at most MAX_GRID a side) of finite numbers in [0, 1]."""
    if not isinstance(heatmap, list) or not 0 < len(heatmap) <= MAX_GRID:
        return False
    width = len(heatmap[0]) if isinstance(heatmap[0], list) else 0
    if not 0 < width <= MAX_GRID:
        return False
    return all(
        isinstance(row, list)
        and len(row) == width
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0.0 <= v <= 1.0
            for v in row
        )
        for row in heatmap
    )
