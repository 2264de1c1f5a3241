"""Inflating compressed request bodies (bounded) and compressing responses as Accept-Encoding asks."""

import gzip
import zlib

import pytest
from werkzeug.http import parse_accept_header

from v2_codec import V2Error
from v2_content_coding import compress, inflate

BODY = b'{"inputs": []}' + bytes(range(256)) * 40


@pytest.mark.parametrize(
    "coding, encode",
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("GZip ", gzip.compress), ("identity", bytes), ("", bytes)],
)
def test_each_coding_gives_back_the_body_as_sent(coding, encode):
    assert inflate(encode(BODY), coding, len(BODY)) == BODY


def test_a_body_inflating_past_the_limit_is_a_413_after_limit_bytes():
    bomb = zlib.compress(b"\0" * 10_000_000, 9)  # 10 kB that inflate to 10 MB
    with pytest.raises(V2Error) as err:
        inflate(bomb, "deflate", 1000)
    assert err.value.status == 413 and "1000 bytes" in str(err.value)
    assert inflate(zlib.compress(b"\0" * 1000), "deflate", 1000) == b"\0" * 1000  # exactly the limit is fine


@pytest.mark.parametrize(
    "body, coding, message",
    [
        (BODY, "gzip", "not valid gzip"),
        (gzip.compress(BODY), "deflate", "not valid deflate"),  # the codings are not interchangeable
        (zlib.compress(BODY), "gzip", "not valid gzip"),
        (gzip.compress(BODY)[:-30], "gzip", "ends before"),
        (b"", "deflate", "ends before"),
        (gzip.compress(BODY) + b"tail", "gzip", "4 bytes follow"),
        (gzip.compress(BODY) * 2, "gzip", "bytes follow"),  # one member only
        (BODY, "br", "unsupported Content-Encoding 'br'"),
        (BODY, "gzip, deflate", "unsupported"),
    ],
)
def test_bad_compressed_bodies_are_400s(body, coding, message):
    with pytest.raises(V2Error) as err:
        inflate(body, coding, 1 << 20)
    assert err.value.status == 400 and message in str(err.value)


@pytest.mark.parametrize(
    "accept, coding",
    [
        ("", None),
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip;q=0.5, deflate", "deflate"),
        ("gzip;q=0.5, identity", None),
        ("gzip;q=0, deflate;q=0", None),
        ("br", None),
        ("*", None),
    ],
)
def test_responses_take_the_preferred_coding(accept, coding):
    data, chosen = compress(BODY, parse_accept_header(accept))
    assert chosen == coding
    decoders = {None: bytes, "gzip": gzip.decompress, "deflate": zlib.decompress}
    assert decoders[chosen](data) == BODY
    assert chosen is None or len(data) < len(BODY)
