"""Build test images in memory: good ones in every mode Pillow converts, and every kind of bad input."""

import io
import struct
import zlib

from PIL import Image


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A ~100-byte PNG whose header declares width x height RGB pixels (the data would be gigabytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def good_images() -> dict[str, bytes]:
    """Modes the worker must convert, not reject."""
    rgb = Image.new("RGB", (64, 48), (200, 30, 40))
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    anim = io.BytesIO()
    frames[0].save(anim, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return {
        "rgb.jpg": encode(rgb, "JPEG"),
        "cmyk.jpg": encode(rgb.convert("CMYK"), "JPEG"),
        "gray.jpg": encode(rgb.convert("L"), "JPEG"),
        "palette.png": encode(rgb.convert("P"), "PNG"),
        "rgba.png": encode(rgb.convert("RGBA"), "PNG"),
        "gray16.png": encode(Image.new("I;16", (40, 30), 40000), "PNG"),
        "animated.gif": anim.getvalue(),
    }
