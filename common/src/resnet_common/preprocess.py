"""Image bytes → ResNet50 input, bit-identical to Keras (pure functions; imports only numpy and Pillow).

One implementation for every process: the API decodes each upload once (`decode_pixels`, 224×224×3 uint8, what
Keras' load_img yields) and ships those 147 KiB through Redis; the worker only normalises them (`normalize_pixels`);
`preprocess_bytes` does both, for in-process use and for the conversion CLI's INT8 calibration.

Reference: `keras.utils.load_img(path, target_size=(224, 224))` (Pillow; `img.convert("RGB")` when the mode
is not RGB; `img.resize((w, h), NEAREST)` only when the size differs) + `img_to_array` (float32) +
`keras.applications.resnet50.preprocess_input` (caffe: RGB→BGR, then minus the ImageNet mean per channel).

Two deliberate additions, both no-ops for ordinary files:
- EXIF orientation is applied first (`ImageOps.exif_transpose`), so phone photos are classified upright.
  This is the one documented difference from Keras, which ignores the tag.
- Decompression bombs and undecodable data raise `InvalidImage` instead of crashing or eating memory.
Everything else follows Keras on purpose, including its conversions: 16-bit grayscale ("I;16") goes through
Pillow's `convert("RGB")`, which clips values above 255 rather than rescaling; animated files give their
first frame; palette and alpha images are converted as Pillow does (alpha dropped, no compositing).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

TARGET_SIZE = (224, 224)  # (height, width) as Keras' target_size
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
DEFAULT_MAX_PIXELS = 40_000_000
PIXELS_SHAPE = (*TARGET_SIZE, 3)  # the uint8 array that crosses Redis
PIXELS_BYTES = PIXELS_SHAPE[0] * PIXELS_SHAPE[1] * PIXELS_SHAPE[2]
MODES = ("keras", "fast")  # PREPROCESS: keras = bit-identical to Keras; fast = JPEG decoded at a reduced DCT scale
# Bytes per pixel Pillow holds in memory for a decoded image of each mode (RGB is stored 4 bytes wide).
_MEMORY_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF")  # the API's upload formats; no other Pillow decoder is reachable
_EXIF_ORIENTATION = 0x0112


class InvalidImage(ValueError):
    """The bytes are not an image this service can classify; the message says why."""


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, mode: str = "keras", reserve=None) -> Image.Image:
    """Decode bytes to a fully loaded Pillow image (first frame), refusing bombs before decoding pixels.

    mode "fast" decodes a JPEG at the smallest DCT scale (1/2, 1/4, 1/8) still at least 224 on each side.
    `reserve(nbytes)`, when given, is called with decode_memory() of the image before its pixels are decoded
    (the API's decode budget: it may raise to refuse or wait); the caller releases it.
    """
    if mode not in MODES:
        raise ValueError(f"preprocessing mode {mode!r} is not one of {MODES}")
    if not data:
        raise InvalidImage("empty file")
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image too large: declares too many pixels ({exc})") from None
    except Exception as exc:  # Pillow raises many types for garbage: UnidentifiedImageError, SyntaxError…
        raise InvalidImage(f"not a readable image (not an image of an allowed format: JPEG, PNG, GIF): {exc}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImage(
            f"image too large: declares too many pixels, {width}x{height} pixels exceeds the limit of {max_pixels}"
        )
    if mode == "fast" and img.format == "JPEG":
        img.draft(img.mode, (min(width, TARGET_SIZE[1]), min(height, TARGET_SIZE[0])))
    if reserve is not None:
        reserve(decode_memory(img))
    try:
        img.load()
    except Exception as exc:  # truncated or corrupt data
        raise InvalidImage(f"image data is corrupt or truncated: {exc}") from None
    return img


def decode_memory(img: Image.Image, transpose: bool | None = None) -> int:
    """Bytes Pillow will hold at once to decode `img` (at its current, possibly drafted, size), turn it upright
    and convert it to RGB: every full-size copy alive together in decode_pixels. `transpose` None: as the
    header's EXIF orientation says (before decoding; a late PNG eXIf chunk is known only after it)."""
    width, height = img.size
    decoded = _MEMORY_BYTES_PER_PIXEL.get(img.mode, 4)
    per_pixel = decoded
    if transposes(header_orientation(img)) if transpose is None else transpose:
        per_pixel += decoded  # exif_transpose makes a full-size transposed copy, alive beside the decoded one
    if img.mode != "RGB":
        per_pixel += 4  # convert("RGB") makes another full-size image
    return width * height * per_pixel


def transposes(orientation: int | None) -> bool:
    return orientation not in (None, 0, 1)


def header_orientation(img: Image.Image) -> int | None:
    """The EXIF orientation read from what Image.open parsed, never decoding pixels (a PNG's getexif() decodes
    the whole image when its eXIf chunk is not before the pixel data); 1 when the header has none."""
    raw = img.info.get("exif")
    if not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(_EXIF_ORIENTATION, 1)
    except Exception:
        return 1


def orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: upright() leaves the pixels as stored
        return 1


def upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, if any (untouched otherwise, so Keras parity holds)."""
    if orientation(img) in (None, 0, 1):  # unreadable EXIF counts as 1: classify the pixels as stored
        return img
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:
        raise InvalidImage(f"cannot apply EXIF orientation: {exc}") from None


def load_rgb(img: Image.Image, target_size: tuple[int, int] = TARGET_SIZE) -> Image.Image:
    """Exactly Keras' load_img after the file is opened: convert to RGB, resize with NEAREST if needed."""
    try:
        if img.mode != "RGB":
            img = img.convert("RGB")
        width_height = (target_size[1], target_size[0])
        if img.size != width_height:
            img = img.resize(width_height, Image.Resampling.NEAREST)
    except Exception as exc:  # e.g. a mode Pillow cannot convert
        raise InvalidImage(f"cannot convert image (mode {img.mode}) to RGB: {exc}") from None
    return img


def caffe_normalize(rgb: np.ndarray) -> np.ndarray:
    """Keras `preprocess_input` in caffe mode on a float32 HWC (or NHWC) RGB array: BGR minus the mean.

    Same operation order and dtypes as Keras (in-place float32 subtraction of Python floats per channel).
    """
    x = np.asarray(rgb, dtype=np.float32)[..., ::-1].copy()
    x[..., 0] -= CAFFE_MEAN_BGR[0]
    x[..., 1] -= CAFFE_MEAN_BGR[1]
    x[..., 2] -= CAFFE_MEAN_BGR[2]
    return x


def to_array(img: Image.Image) -> np.ndarray:
    """Keras img_to_array: HWC float32."""
    return np.asarray(img, dtype=np.float32)


def decode_pixels(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, mode: str = "keras", reserve=None) -> np.ndarray:
    """Bytes → uint8 RGB array (224, 224, 3): exactly the pixels of Keras' load_img (keras mode)."""
    with open_image(data, max_pixels, mode, reserve) as img:
        rgb = load_rgb(upright(img))
        return np.asarray(rgb, dtype=np.uint8)


_MEAN_BGR_F32 = np.array(CAFFE_MEAN_BGR, dtype=np.float32)
# Row c, column v: what the uint8 value v of RGB channel c becomes in the model input (channel 2 - c of BGR):
# float32(v) minus the float32 mean, the very subtraction Keras does, done once for all 256 values.
_NORMALIZED_RGB = np.arange(256, dtype=np.float32)[None, :] - _MEAN_BGR_F32[::-1, None]


def normalize_pixels(pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 (224, 224, 3) → the float32 model input, bit-identical to img_to_array + preprocess_input, by table
    lookup. `out`: a float32 array of the same shape to write into (a slot of the worker's batch) instead of a
    new one; a fresh 588 KiB array per image costs more than the lookups (the allocator maps and faults it in)."""
    if out is None:
        out = np.empty(pixels.shape, dtype=np.float32)
    for channel in range(3):
        np.take(_NORMALIZED_RGB[channel], pixels[..., channel], out=out[..., 2 - channel], mode="clip")
    return out


def pixels_from_bytes(raw: bytes) -> np.ndarray:
    """The `pixels` field of a job (raw uint8, row-major HWC) → array; InvalidImage if its size is wrong."""
    if len(raw) != PIXELS_BYTES:
        raise InvalidImage(f"pixel payload has {len(raw)} bytes, expected {PIXELS_BYTES}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(PIXELS_SHAPE)


def tensor_from_bytes(raw: bytes) -> np.ndarray:
    """The `input` field of a job (float32 little-endian, row-major HWC, already normalised) → the model input;
    InvalidImage if its size is wrong or a value is not finite."""
    if len(raw) != PIXELS_BYTES * 4:
        raise InvalidImage(f"input tensor has {len(raw)} bytes, expected {PIXELS_BYTES * 4}")
    x = np.frombuffer(raw, dtype="<f4").reshape(PIXELS_SHAPE)
    if not np.isfinite(x).all():
        raise InvalidImage("input tensor has non-finite values")
    return x


def preprocess_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, mode: str = "keras") -> np.ndarray:
    """Bytes → float32 array (224, 224, 3), ready for the ONNX graph's `input`."""
    return normalize_pixels(decode_pixels(data, max_pixels, mode))
