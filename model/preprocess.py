"""Image bytes → ResNet50 input, bit-identical to Keras (pure functions; imports only numpy and Pillow).

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
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF")  # the API's upload formats; no other Pillow decoder is reachable
_EXIF_ORIENTATION = 0x0112


class InvalidImage(ValueError):
    """The bytes are not an image this service can classify; the message says why."""


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode bytes to a fully loaded Pillow image (first frame), refusing bombs before decoding pixels."""
    if not data:
        raise InvalidImage("empty file")
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image too large: {exc}") from None
    except Exception as exc:  # Pillow raises many types for garbage: UnidentifiedImageError, SyntaxError…
        raise InvalidImage(f"not a readable image: {exc}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImage(f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}")
    try:
        img.load()
    except Exception as exc:  # truncated or corrupt data
        raise InvalidImage(f"image data is corrupt or truncated: {exc}") from None
    return img


def upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, if any (untouched otherwise, so Keras parity holds)."""
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: classify the pixels as stored
        return img
    if orientation in (None, 0, 1):
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


def preprocess_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes → float32 array (224, 224, 3), ready for the ONNX graph's `input`."""
    img = load_rgb(upright(open_image(data, max_pixels)))
    return caffe_normalize(to_array(img))
