"""Test images made in memory: good ones in every mode Pillow converts, and the bad and odd uploads a public endpoint
meets sooner or later (used by the API suite and the end-to-end suite)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from testkit.paths import PHOTOS


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A ~100-byte PNG whose header declares width × height RGB pixels (decompression-bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


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


def photo_image() -> Image.Image:
    """The sample cat photo as an RGB image."""
    return Image.open(PHOTOS / "cat.jpg").convert("RGB")


def bad_uploads() -> dict[str, tuple[str, bytes]]:
    """name → (upload file name, content) that must be refused with a 4xx."""
    jpeg = (PHOTOS / "cat.jpg").read_bytes()
    return {
        "zero_bytes": ("empty.jpg", b""),
        "truncated_jpeg": ("cut.jpg", jpeg[: len(jpeg) // 3]),
        "text_as_jpg": ("notes.jpg", b"just some text, not an image\n" * 20),
        "pdf_as_jpg": ("doc.jpg", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"),
        "png_bomb": ("bomb.png", png_bomb()),
        "disallowed_extension": ("cat.bmp", jpeg),
        "no_extension": ("cat", jpeg),
    }


def odd_but_valid_uploads() -> dict[str, tuple[str, bytes]]:
    """name → (upload file name, content) that Pillow can convert and must be classified."""
    img = photo_image()
    frames = [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display upright
    return {
        "cmyk_jpeg": ("cmyk.jpg", encode(img.convert("CMYK"), "JPEG")),
        "grayscale": ("gray.png", encode(img.convert("L"), "PNG")),
        "palette": ("palette.png", encode(img.convert("P"), "PNG")),
        "rgba": ("rgba.png", encode(img.convert("RGBA"), "PNG")),
        "png_16_bit": ("deep.png", encode(img.convert("L").convert("I;16"), "PNG")),
        "animated_gif": (
            "anim.gif",
            encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        ),
        "exif_rotated": ("phone.jpg", encode(img.rotate(90, expand=True), "JPEG", exif=exif)),
        "unicode_name": ("chát ☕ фото.jpg", encode(img, "JPEG")),
        "traversal_name": ("../../etc/passwd.jpg", encode(img, "JPEG")),
        "absolute_name": ("/tmp/x/evil.jpg", encode(img, "JPEG")),
        "long_name": ("a" * 300 + ".jpg", encode(img, "JPEG")),
        "upper_case_ext": ("CAT.JPEG", encode(img, "JPEG")),
    }


def oriented_jpeg(width: int, height: int, orientation: int = 6, quality: int = 50) -> bytes:
    """A flat JPEG of width × height pixels whose EXIF says `orientation` (5–8: the decoder transposes it, a
    second full-size copy). Small on the wire, `width × height × 4` bytes per full-size copy once decoded."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.new("RGB", (width, height), (90, 140, 60)), "JPEG", quality=quality, exif=exif)


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment of a JPEG; a scan's end includes its entropy-coded data."""
    out, pos = [], 2
    while pos < len(data) - 1:
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI
            out.append((marker, pos, pos + 2))
            break
        end = pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not a stuffed byte or a restart
            while not (data[end] == 0xFF and data[end + 1] != 0x00 and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
        out.append((marker, pos, end))
        pos = end
    return out


def many_scan_jpeg(scans: int = 2000, side: int = 2048) -> bytes:
    """A decodable progressive JPEG with `scans` scans: its last scan (with the tables before it) repeated. Each
    scan makes the decoder pass over every block again, so its cost grows with the count; the image is flat, so
    each repeated scan is a few hundred bytes on the wire."""
    data = encode(Image.new("RGB", (side, side), (120, 80, 200)), "JPEG", progressive=True, quality=90)
    segments = _jpeg_segments(data)
    sos = [i for i, (marker, _, _) in enumerate(segments) if marker == 0xDA]
    first = sos[-2] + 1  # the segments after the second-to-last scan: the last scan's tables, header and data
    tail = data[segments[first][1] : segments[sos[-1]][2]]
    eoi = segments[-1][1]
    return data[:eoi] + tail * (scans - len(sos)) + data[eoi:]
