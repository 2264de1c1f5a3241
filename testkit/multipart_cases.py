"""Seeded multipart/form-data bodies gone wrong, for the API's never-a-500 tests: a valid upload of a real photo,
each mutated one to three times in the ways clients and attackers get multipart wrong (the boundary parameter, the
part headers, the delimiters, the number and nesting of parts, bytes in between). The same seed gives the same
bodies, so a failure names the case that reproduces it."""

from __future__ import annotations

import random
from dataclasses import dataclass

from testkit.framing_cases import edit_byte, form_body, form_part

BOUNDARY = "b0undary"
ODD_BYTES = [b"\r", b"\n", b"-", b"\x00", b'"', b";", b"=", b" ", b"\xff"]
DISPOSITIONS = [
    b'form-data; name="file"; filename="cat.jpg"',
    b'form-data; name="file"',  # no filename
    b'form-data; filename="cat.jpg"',  # no name
    b"form-data; name=file; filename=cat.jpg",  # unquoted
    b"form-data; name=\"file\"; filename*=UTF-8''c%C3%A4t.jpg",
    b'form-data; name="file"; filename="' + b"a" * 5000 + b'.jpg"',
    b'form-data; name="file"; filename="c\x00t.jpg"',
    b'form-data; name="file"; filename="../../../etc/cat.jpg"',
    b'form-data; name="file"; filename="C:\\\\dir\\\\cat.JPG"',
    b'form-data; name="file"; filename=""',
    b'form-data; name="file"; filename="cat.jpg"; filename="dog.png"',
    b'attachment; name="file"; filename="cat.jpg"',
    b'form-data; name="file"; filename="\xff\xfe.jpg"',
    b'form-data; name="file"; filename="cat.jpg',  # unterminated quote
    b"",
]
PART_HEADERS = [
    b"Content-Type: image/jpeg",
    b"Content-Type: multipart/mixed; boundary=inner",
    b"Content-Type: text/plain; charset=utf-32",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Length: 5",
    b"Content-Length: -1",
    b"X-" + b"h" * 9000 + b": 1",
    b"No-Colon",
    b" folded: continuation",
]
CONTENT_TYPES = [
    "multipart/form-data; boundary={b}",
    'multipart/form-data; boundary="{b}"',
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary={b}; boundary=other",
    "multipart/form-data; boundary=other",
    "multipart/form-data; boundary=" + "x" * 200,
    "multipart/form-data; boundary={b}; charset=utf-16",
    "multipart/mixed; boundary={b}",
    "MULTIPART/FORM-DATA; BOUNDARY={b}",
    "multipart/form-data; boundary={b}\x00",
]


@dataclass(frozen=True)
class MultipartCase:
    number: int
    mutations: tuple[str, ...]
    content_type: str
    body: bytes


def multipart_cases(photo: bytes, seed: int, count: int) -> list[MultipartCase]:
    """`count` (Content-Type, body) cases built from a valid upload of `photo` in the form field `file`."""
    rng = random.Random(seed)
    cases = []
    for number in range(count):
        boundary = BOUNDARY.encode()
        disposition, headers, content = DISPOSITIONS[0], [PART_HEADERS[0]], photo
        extra: list[bytes] = []
        content_type = CONTENT_TYPES[0]
        closing, mutations, preamble, epilogue, byte_edits = True, [], b"", b"", 0
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(
                ["content type", "disposition", "part header", "more parts", "nested", "no closing", "bytes"]
                + ["content cut", "preamble", "epilogue"]
            )
            if kind == "content type":
                content_type = rng.choice(CONTENT_TYPES)
                mutations.append(f"Content-Type {content_type[:50]!r}")
            elif kind == "disposition":
                disposition = rng.choice(DISPOSITIONS)
                mutations.append(f"disposition {disposition[:50]!r}")
            elif kind == "part header":
                header = rng.choice(PART_HEADERS)
                headers.insert(rng.randrange(len(headers) + 1), header)
                mutations.append(f"part header {header[:40]!r}")
            elif kind == "more parts":
                n = rng.choice([1, 40, 1000])
                extra += [form_part(b'form-data; name="top_k"', [], b"3")] * n
                mutations.append(f"{n} more parts")
            elif kind == "nested":
                inner = b"--inner\r\n" + form_part(DISPOSITIONS[0], [PART_HEADERS[0]], photo) + b"\r\n--inner--"
                extra.append(
                    form_part(b'form-data; name="file"', [b"Content-Type: multipart/mixed; boundary=inner"], inner)
                )
                mutations.append("a nested multipart part")
            elif kind == "no closing":
                closing = False
                mutations.append("no closing delimiter")
            elif kind == "content cut":
                content = content[: rng.randrange(len(content) + 1)]
                mutations.append(f"content cut to {len(content)} bytes")
            elif kind == "preamble":
                preamble = rng.choice([b"preamble\r\n", b"--" + boundary + b"--\r\n", b"\r\n" * 3])
                mutations.append(f"preamble {preamble[:20]!r}")
            elif kind == "epilogue":
                epilogue = rng.choice([b"epilogue", b"--" + boundary + b"\r\n", b"\x00" * 64])
                mutations.append(f"epilogue {epilogue[:20]!r}")
            else:  # a byte inserted, replaced or deleted in the first 400 bytes (the delimiter, the part headers)
                byte_edits += 1
                mutations.append("a byte edited")
        body = preamble + form_body([form_part(disposition, headers, content), *extra], boundary, closing) + epilogue
        if byte_edits:
            head = bytearray(body[:400])
            for _ in range(byte_edits):
                edit_byte(rng, head, ODD_BYTES)
            body = bytes(head) + body[400:]
        cases.append(MultipartCase(number, tuple(mutations), content_type.format(b=BOUNDARY), body))
    return cases
