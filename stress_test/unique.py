"""Unique bytes per request: the same picture, a different file, so no cache can inflate a figure.

JPEG: a comment segment (COM, 0xFFFE) right after the start-of-image marker; PNG: a tEXt chunk before IEND.
Decoders skip both, so the pixels (and the work) are unchanged; the bytes, and any hash of them, differ.
"""

from __future__ import annotations

import struct
import zlib

JPEG_SOI = b"\xff\xd8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def unique(data: bytes, tag: str) -> bytes:
    """`data` with `tag` (ASCII, < 60000 bytes) embedded where decoders ignore it."""
    text = tag.encode("ascii")
    if data.startswith(JPEG_SOI):
        return JPEG_SOI + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    if data.startswith(PNG_SIGNATURE):
        end = data.rindex(b"IEND") - 4
        body = b"tEXt" + b"Comment\x00" + text
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        return data[:end] + chunk + data[end:]
    raise ValueError("unique() knows JPEG and PNG only")
