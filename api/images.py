"""Decode each upload once, in the API: bytes → the 224×224×3 uint8 pixels the worker classifies.

Checks, in order: not empty; Pillow identifies it as an allowed format; the declared size is under
MAX_IMAGE_PIXELS (from the header, before any pixel is decoded: decompression bombs); a JPEG that is not
sequential has at most MAX_JPEG_SCANS scans (a progressive JPEG re-decodes every pixel once per scan: thousands
of scans burn a CPU for minutes in a thread nobody can cancel); the decode fits the process's decode budget (decode_budget), waiting
for it no later than the request's deadline; the pixels decode completely (a truncated JPEG fails). The pixels
are bit-identical to Keras' load_img in PREPROCESS=keras; PREPROCESS=fast decodes JPEGs at a reduced DCT scale.
"""

import dataclasses
import hashlib
import io
from typing import TYPE_CHECKING

import decode_budget
import settings
from errors import DecodeBusy, InvalidImage

if TYPE_CHECKING:  # numpy and the decoder load on the first decode, not when a gunicorn worker boots
    import numpy as np

# Ordinary progressive JPEGs have about 10 scans (libjpeg's default script) and rarely more than a few dozen.
MAX_JPEG_SCANS = 100
DISPLAY_SIDE = 320  # the page shows the upload at most this many pixels a side


@dataclasses.dataclass(frozen=True, eq=False)
class Upload:
    """One upload, decoded once: the page and /predict hand it to model_predict, which never decodes it again."""

    name: str  # content-addressed: stored under it (page) or sent as the job's filename (/predict)
    pixels: "np.ndarray"  # 224×224×3 uint8, what the worker classifies
    sha256: str  # of the bytes: the response cache's key
    mode: str  # PREPROCESS mode the pixels were decoded in
    data: bytes = b""  # the bytes as uploaded
    display: bytes | None = None  # a JPEG of at most DISPLAY_SIDE pixels a side, when asked for (the page)


# Frame headers (SOFn) of sequential JPEGs; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SEQUENTIAL_FRAMES = frozenset({0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xC9, 0xCB, 0xCD})
_JPEG_SOS = 0xDA  # start of scan


def jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers in a JPEG. Inside entropy-coded data every 0xFF byte is followed by 0x00 or a
    restart marker, so FF DA occurs only where a scan starts: a count without decoding anything."""
    return data.count(b"\xff\xda") if data[:2] == b"\xff\xd8" else 0


def sequential_jpeg(data: bytes) -> bool:
    """True when the header's marker segments, followed from the start, reach a sequential frame (baseline or
    extended) before any scan. Its scans are not a CPU bomb: each one carries its own bits for every block it
    covers, so decoding grows with the bytes; a progressive scan can cover every block with a few bytes. Anything
    this walk cannot follow is False, and gets its scans counted (which reads every byte of the upload)."""
    if data[:2] != b"\xff\xd8":
        return False
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in _SEQUENTIAL_FRAMES:
            return True
        if marker == _JPEG_SOS or not 0xC0 <= marker <= 0xFE or 0xD0 <= marker <= 0xD9:
            return False  # a scan before any frame, or a marker without a length (fill byte, RSTn, SOI, EOI, TEM)
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return False


def decode(
    data: bytes,
    name: str | None,
    mode: str | None = None,
    extension: str = "",
    deadline: float | None = None,
    display: bool = False,
) -> Upload:
    """Decode under the budget; InvalidImage (400) with a reason a user can act on, DecodeBusy (503).
    `name` None: named by the content's sha256 (its first 32 hex digits) + `extension`, hashing it only once."""
    from resnet_common import preprocess

    mode = mode or settings.PREPROCESS
    if mode not in preprocess.MODES:
        raise ValueError(f"PREPROCESS={mode!r} is not one of {preprocess.MODES}")
    if not sequential_jpeg(data) and (scans := jpeg_scans(data)) > MAX_JPEG_SCANS:
        raise InvalidImage(f"JPEG has {scans} scans, more than the {MAX_JPEG_SCANS} this service decodes")
    budget = decode_budget.budget(settings.DECODE_MEMORY_MB)
    decode_budget.keep_freed(settings.DECODE_CACHE_MB)
    reserved = [0]
    wait_s = decode_budget.wait_s(settings.DECODE_WAIT_S, deadline)

    def reserve(nbytes: int) -> None:
        budget.acquire(nbytes, wait_s)
        reserved[0] += nbytes

    try:
        pixels, rendition = _decode(data, mode, reserve, lambda: reserved[0], display)
    except MemoryError:
        raise DecodeBusy("not enough memory to decode this image now; retry later") from None
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
    return Upload(f"{sha256[:32]}{extension}" if name is None else name, pixels, sha256, mode, data, rendition)


def _decode(data: bytes, mode: str, reserve, reserved_bytes, display: bool) -> tuple["np.ndarray", bytes | None]:
    """preprocess.decode_pixels, plus the display rendition from the same upright image. Every full-size image
    is gone when this returns, before the caller gives its reservation back."""
    import numpy as np
    from resnet_common import preprocess

    with preprocess.open_image(data, settings.MAX_IMAGE_PIXELS, mode, reserve) as img:
        needed = preprocess.decode_memory(img, transpose=preprocess.transposes(preprocess.orientation(img)))
        if needed > reserved_bytes():  # an EXIF orientation found only with the pixels (a late PNG eXIf chunk)
            reserve(needed - reserved_bytes())
        up = preprocess.upright(img)
        pixels = np.asarray(preprocess.load_rgb(up), dtype=np.uint8)
        return pixels, display_jpeg(up) if display else None


def display_jpeg(img, side: int = DISPLAY_SIDE) -> bytes:
    """A JPEG of `img` at most `side` pixels a side (never a full-size copy: resized first, converted after)."""
    from PIL import Image

    scale = min(1.0, side / max(img.size))
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    small = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0) if size != img.size else img
    if small.mode != "RGB":
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, "JPEG", quality=85)
    return out.getvalue()


def _short(exc: BaseException) -> str:
    """One line, bounded, for flash messages and the X-Error header."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
