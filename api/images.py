"""Validate uploaded bytes before they are queued, so a worker never receives something we already know is bad.

Checks: not empty; Pillow identifies it as an allowed format; the declared size is under MAX_IMAGE_PIXELS
(checked from the header, before any pixel is decoded: decompression bombs); the pixels decode completely
(`load()` fails on a truncated JPEG). Modes are not judged here: the worker converts CMYK, L, P, RGBA, 16-bit.
"""

import io

from PIL import Image, UnidentifiedImageError

import settings
from constants import ALLOWED_FORMATS
from errors import InvalidImage


def validate(data: bytes) -> None:
    """Return if the bytes are a decodable image, else raise InvalidImage with a reason a user can act on."""
    if not data:
        raise InvalidImage("empty file")
    limit = settings.MAX_IMAGE_PIXELS
    # Pillow raises DecompressionBombError in open() above 2x this limit and only warns between 1x and 2x;
    # the explicit check below makes the whole range an error without touching the (process-wide) warning filters.
    Image.MAX_IMAGE_PIXELS = limit
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise InvalidImage(f"image declares too many pixels (limit {limit})") from None
    except UnidentifiedImageError:
        raise InvalidImage("not an image (allowed: JPEG, PNG, GIF)") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error… on garbage
        raise InvalidImage(f"unreadable image header: {_short(exc)}") from None
    with img:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise InvalidImage("image has no pixels")
        if width * height > limit:
            raise InvalidImage(f"image declares {width}x{height} pixels (limit {limit})")
        if img.format == "JPEG":
            # DCT-scaled decode: still reads the whole stream (truncation is caught) for a fraction of the CPU of a
            # full decode (see hardware_report.md); the worker decodes at full size anyway (bit-identical to Keras).
            img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
        try:
            img.load()
        except Exception as exc:  # truncated data, corrupt stream, bad palette…
            raise InvalidImage(f"image data is corrupt or truncated: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    """One line, bounded, for flash messages and the X-Error header."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
