"""The page's heatmap overlay: a PNG the app renders from the heatmap itself, so the strict CSP (no inline
script, images only from 'self') holds and nothing is stored.

The result page links `/heatmap.png?cells=…&rows=7&cols=7&w=…&h=…`: the cells are the heatmap quantized to one
byte each (base64url), w × h the upright upload's aspect scaled to the page's display box. The PNG is the grid
upsampled smoothly (bicubic) to that size, coloured with the perceptual `inferno` colour map and partly
transparent (alpha rises with the value, so cold regions barely veil the photo). The content is a pure function
of the URL: cacheable for good. numpy is imported on first use, so it does not lengthen the app's import (a
gunicorn worker's boot).
"""

import base64
import binascii
import functools
import io
from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, request
from PIL import Image

if TYPE_CHECKING:
    import numpy as np

import explain

bp = Blueprint("overlay", __name__)

DISPLAY_SIDE = 320  # px: the page shows the upload at most 20rem (320 px) a side
MAX_SIDE = 1024  # px: largest overlay the route renders
ALPHA_MIN, ALPHA_MAX = 0.15, 0.70  # opacity at value 0 and at value 1
# matplotlib's `inferno` (CC0, van der Walt & Smith) at 17 evenly spaced points, 0 → 1; interpolated linearly.
INFERNO = (
    (0, 0, 4),
    (11, 7, 36),
    (33, 12, 74),
    (61, 9, 101),
    (87, 16, 110),
    (113, 25, 110),
    (138, 34, 106),
    (163, 44, 97),
    (188, 55, 84),
    (210, 70, 68),
    (228, 90, 49),
    (241, 115, 29),
    (249, 142, 9),
    (252, 172, 17),
    (249, 203, 53),
    (242, 234, 105),
    (252, 255, 164),
)


@functools.cache
def lut(size: int = 256) -> "np.ndarray":
    """[size, 3] uint8 lookup table interpolated between the evenly spaced INFERNO anchor colours."""
    import numpy as np

    anchors = np.array(INFERNO, dtype=np.float32)
    x = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, size)
    return np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def encode_cells(heatmap: list[list[float]]) -> str:
    """Heatmap → base64url of one byte per cell (value × 255, rounded), row by row."""
    import numpy as np

    q = np.clip(np.round(np.asarray(heatmap, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return base64.urlsafe_b64encode(q.tobytes()).decode("ascii").rstrip("=")


def decode_cells(token: str, rows: int, cols: int) -> "np.ndarray":
    """The inverse of encode_cells → float32 [rows, cols] in [0, 1]; ValueError on anything malformed."""
    import numpy as np

    if not (0 < rows <= explain.MAX_GRID and 0 < cols <= explain.MAX_GRID):
        raise ValueError("grid size out of range")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("cells are not base64url") from None
    if len(raw) != rows * cols:
        raise ValueError(f"expected {rows * cols} cells, got {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols).astype(np.float32) / 255.0


def display_size(path: str, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """(width, height) of the upload as the browser shows it (EXIF-upright), scaled so the long side is `side`;
    a square when the header cannot be read (the upload was validated, so that is unexpected)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if _rotated(img):
                width, height = height, width
    except Exception:
        return side, side
    scale = side / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _rotated(img: Image.Image) -> bool:
    try:
        return img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # unreadable EXIF: the browser shows the pixels as stored
        return False


def render(cells: "np.ndarray", width: int, height: int) -> bytes:
    """RGBA PNG: the grid upsampled (bicubic, cell centres aligned) to width × height, coloured and veiled."""
    import numpy as np

    smooth = Image.fromarray(cells.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BICUBIC)
    values = np.clip(np.asarray(smooth), 0.0, 1.0)
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = lut()[np.round(values * 255).astype(np.intp)]
    rgba[..., 3] = np.round((ALPHA_MIN + (ALPHA_MAX - ALPHA_MIN) * values) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(out, "PNG")
    return out.getvalue()


def overlay_query(heatmap: list[list[float]], size: tuple[int, int]) -> dict[str, object]:
    """url_for arguments of the overlay for this heatmap at this display size."""
    return {"cells": encode_cells(heatmap), "rows": len(heatmap), "cols": len(heatmap[0]), "w": size[0], "h": size[1]}


@bp.get("/heatmap.png")
def heatmap_png():
    """The overlay PNG; 400 for a malformed query (never a 500)."""
    try:
        rows, cols = int(request.args.get("rows", "7")), int(request.args.get("cols", "7"))
        width, height = int(request.args.get("w", DISPLAY_SIDE)), int(request.args.get("h", DISPLAY_SIDE))
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ValueError("size out of range")
        cells = decode_cells(request.args.get("cells", ""), rows, cols)
    except ValueError as exc:
        abort(400, description=f"malformed overlay query: {str(exc)[:200]}")
    response = Response(render(cells, width, height), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"  # a pure function of the URL
    return response
