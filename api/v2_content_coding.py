"""Compressed inference bodies, as Triton's HTTP endpoint takes them (tritonclient's `request_compression_algorithm`
and `response_compression_algorithm`): a request body sent with `Content-Encoding: gzip` or `deflate` (the zlib
format, as HTTP means it) is inflated before it is parsed; a response is compressed when `Accept-Encoding` prefers
one of the two to identity.

Inflating stops one byte past `limit` (the largest body the API takes uncompressed), so a few kilobytes that would
inflate to gigabytes cost at most `limit` bytes of memory and work before their 413.
"""

from __future__ import annotations

import zlib

from werkzeug.datastructures import Accept

from v2_codec import V2Error

WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}  # zlib's window bits for each coding's framing
RESPONSE_LEVEL = 1  # probabilities are float32: higher levels cost more CPU and barely shrink them further


def inflate(body: bytes, coding: str, limit: int) -> bytes:
    """The body as sent before its `coding` (a Content-Encoding value; empty or identity: as it is). One gzip
    member or one zlib stream, nothing after it. V2Error: 400 for another coding or data that is not whole and
    valid, 413 when it inflates to more than `limit` bytes."""
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in WBITS:
        raise V2Error(f"unsupported Content-Encoding {coding[:40]!r}; send gzip, deflate or identity")
    stream = zlib.decompressobj(WBITS[coding])
    try:
        data = stream.decompress(body, limit + 1)
    except zlib.error as exc:
        raise V2Error(f"the request body is not valid {coding} data ({exc})") from None
    if len(data) > limit:
        raise V2Error(f"the request body inflates to more than {limit} bytes", 413, "v2_too_large")
    if not stream.eof:
        raise V2Error(f"the request body ends before its {coding} data does")
    if stream.unused_data:
        raise V2Error(f"{len(stream.unused_data)} bytes follow the request body's {coding} data")
    return data


def compress(body: bytes, accepted: Accept) -> tuple[bytes, str | None]:
    """The response body in the coding `accepted` (the request's Accept-Encoding) prefers, and that coding's name;
    (body, None) when identity is preferred or nothing this server can send is accepted."""
    coding = accepted.best_match(["identity", *WBITS], default="identity")
    if coding == "identity":
        return body, None
    stream = zlib.compressobj(RESPONSE_LEVEL, zlib.DEFLATED, WBITS[coding])
    return stream.compress(body) + stream.flush(), coding
