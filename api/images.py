"""Decode each upload once, in the API: bytes → the 224×224×3 uint8 pixels the worker classifies.

Checks, in order: not empty; Pillow identifies it as an allowed format; the declared size is under
MAX_IMAGE_PIXELS (from the header, before any pixel is decoded: decompression bombs); the decode fits the
process's decode budget (decode_budget); the pixels decode completely (a truncated JPEG fails). The pixels are
bit-identical to Keras' load_img in PREPROCESS=keras; PREPROCESS=fast decodes JPEGs at a reduced DCT scale.
"""

import dataclasses
import hashlib
from typing import TYPE_CHECKING

import decode_budget
import settings
from errors import DecodeBusy, InvalidImage

if TYPE_CHECKING:  # numpy and the decoder load on the first decode, not when a gunicorn worker boots
    import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Upload:
    """One upload, decoded once: the page and /predict hand it to model_predict, which never decodes it again."""

    name: str  # content-addressed: stored under it (page) or sent as the job's filename (/predict)
    pixels: "np.ndarray"  # 224×224×3 uint8, what the worker classifies
    sha256: str  # of the bytes: the response cache's key
    mode: str  # PREPROCESS mode the pixels were decoded in
    data: bytes = b""  # the bytes as uploaded (the page stores them for /display)


def decode(data: bytes, name: str | None, mode: str | None = None, extension: str = "") -> Upload:
    """Decode under the budget; InvalidImage (400) with a reason a user can act on, DecodeBusy (503).
    `name` None: named by the content's sha256 (its first 32 hex digits) + `extension`, hashing it only once."""
    from resnet_common import preprocess

    mode = mode or settings.PREPROCESS
    if mode not in preprocess.MODES:
        raise ValueError(f"PREPROCESS={mode!r} is not one of {preprocess.MODES}")
    budget = decode_budget.budget(settings.DECODE_MEMORY_MB)
    reserved = [0]

    def reserve(nbytes: int) -> None:
        budget.acquire(nbytes, settings.DECODE_WAIT_S)
        reserved[0] = nbytes

    try:
        pixels = preprocess.decode_pixels(data, settings.MAX_IMAGE_PIXELS, mode, reserve)
    except preprocess.InvalidImage as exc:
        raise InvalidImage(_short(exc)) from None
    except decode_budget.BudgetExceeded as exc:
        raise InvalidImage(str(exc)) from None
    except decode_budget.BudgetBusy as exc:
        raise DecodeBusy(str(exc)) from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error… on garbage
        raise InvalidImage(f"unreadable image: {_short(exc)}") from None
    finally:
        if reserved[0]:
            budget.release(reserved[0])
    sha256 = hashlib.sha256(data).hexdigest()
    return Upload(f"{sha256[:32]}{extension}" if name is None else name, pixels, sha256, mode, data)


def _short(exc: BaseException) -> str:
    """One line, bounded, for flash messages and the X-Error header."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
