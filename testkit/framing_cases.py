"""Seeded raw HTTP/1.1 requests with broken framing, for the hostile-client tests: valid requests to every kind of
route, each mutated one to three times (a byte in the head; a header added, repeated or dropped; a wrong
Content-Length; another method, target or version; a body cut, padded or chunked), some with a second request
pipelined after them. The same seed gives the same bytes, so a failure names the case that reproduces it."""

from __future__ import annotations

import contextlib
import random
import re
import socket
import time
from dataclasses import dataclass

BOUNDARY = b"fuzzboundary"
UPLOAD_NAME = b"x.jpg"


def form_part(disposition: bytes, headers: list[bytes], content: bytes) -> bytes:
    """One part of a multipart/form-data body: its Content-Disposition, other headers, content."""
    return b"\r\n".join([b"Content-Disposition: " + disposition, *headers]) + b"\r\n\r\n" + content


def form_body(parts: list[bytes], boundary: bytes, closing: bool = True) -> bytes:
    """A multipart/form-data body of these parts; `closing` False leaves out the closing delimiter."""
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if closing else b"")


def edit_byte(rng: random.Random, data: bytearray, odd_bytes: list[bytes]) -> str:
    """Insert, replace or delete one byte of `data` in place, at a random place; says what it did."""
    at = rng.randrange(len(data) + 1)
    odd = rng.choice(odd_bytes)
    op = rng.choice(["insert", "replace", "delete"])
    if op == "insert" or not data:
        data[at:at] = odd
    elif op == "replace":
        data[min(at, len(data) - 1)] = odd[0]
    else:
        del data[min(at, len(data) - 1)]
    return f"{op} {odd!r} at {at}"


def _multipart(path: bytes, field: bytes, data: bytes) -> bytes:
    disposition = b'form-data; name="' + field + b'"; filename="' + UPLOAD_NAME + b'"'
    body = form_body([form_part(disposition, [b"Content-Type: image/jpeg"], data)], BOUNDARY)
    return _request(b"POST", path, [b"Content-Type: multipart/form-data; boundary=" + BOUNDARY], body)


def _request(method: bytes, target: bytes, headers: list[bytes], body: bytes = b"") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: x", *headers]
    if body or method in (b"POST", b"PUT"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


V2_JSON = b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["bm90IGFuIGltYWdl"]}]}'
V2_BINARY_HEADER = (
    b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 16}}]}'
)
SEEDS: dict[str, bytes] = {  # each valid as it stands; none needs a worker (an image that is none answers 400)
    "predict": _multipart(b"/predict", b"file", b"not an image"),
    "page upload": _multipart(b"/", b"file", b"not an image"),
    "v2 JSON infer": _request(b"POST", b"/v2/models/resnet50/infer", [b"Content-Type: application/json"], V2_JSON),
    "v2 binary infer": _request(
        b"POST",
        b"/v2/models/resnet50/infer",
        [b"Inference-Header-Content-Length: %d" % len(V2_BINARY_HEADER)],
        V2_BINARY_HEADER + b"\x0c\x00\x00\x00not an image",
    ),
    "v2 metadata": _request(b"GET", b"/v2/models/resnet50", []),
    "feedback": _request(
        b"POST", b"/feedback", [b"Content-Type: application/x-www-form-urlencoded"], b"filename=a.jpg&prediction=x"
    ),
    "heatmap": _request(b"GET", b"/heatmap.png?rows=1&cols=1&cells=AA&w=8&h=8", []),
    "health": _request(b"GET", b"/health", []),
    "static file": _request(b"GET", b"/static/style.css", []),
}
PAGE_POST = re.compile(rb"POST /(?:[?#]\S*)? ")  # the course's page answers a form it cannot use in HTML

ODD_BYTES = [b"\x00", b"\r", b"\n", b" ", b"\t", b":", b"\x7f", b"\x80", b"\xff", b"%", b"/", b"?", b"#", b"\x1b"]
BROWSER_ACCEPT = b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ODD_HEADERS = [
    BROWSER_ACCEPT,  # the answers a browser gets: the page's redirects, nginx's page, werkzeug's HTML errors
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: chunked, identity",
    b"Transfer-Encoding: gzip, chunked",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999",
    b"Content-Length: 1e3",
    b"Content-Length: 5, 5",
    b"Expect: 100-continue",
    b"Expect: 999-nope",
    b"Connection: close",
    b"Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__",
    b"Upgrade: websocket",
    b"Host:",
    b"Host: a\r\nHost: b",
    b" X-Folded: continued",
    b"X-Request-ID: ../../../etc/passwd",
    b"Content-Encoding: gzip",
    b"Content-Encoding: br",
    b"Content-Type: multipart/form-data",
    b"Content-Type: multipart/form-data; boundary=",
    b"Content-Type: application/json; charset=utf-32",
    b"Inference-Header-Content-Length: 999999",
    b"Inference-Header-Content-Length: -5",
    b"Accept-Encoding: gzip;q=2",
    b"Range: bytes=0-0,0-0,0-0",
    b"If-None-Match: *",
    b"X-Forwarded-For: 127.0.0.1",
    b"X-Client-Addr: 1.2.3.4",
    b"X-Request-Start: t=0",
    b"A" * 300 + b": b",
    b"X: " + b"v" * 6000,
    b": no name",
    b"No-Colon-Here",
]
METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"post", b"G ET", b"CONNECT", b"X" * 40]
TARGETS = [
    b"*",
    b"http://x/predict",
    b"http://other.example/v2",
    b"//predict",
    b"/predict?x=%zz",
    b"/%2e%2e/app.py",
    b"/v2/models/%00/infer",
    b"/v2/models/resnet50/versions/-1/infer",
    b"/v2/models/" + b"m" * 3000,
    b"/static/%2e%2e/%2e%2e/app.py",
    b"/predict#frag",
    b"predict",
]
VERSIONS = [b"HTTP/1.0", b"HTTP/0.9", b"HTTP/1.10", b"HTTP/2", b"HTTP/1.1x", b"HTTP/1.1 extra", b"http/1.1", b""]


@dataclass(frozen=True)
class FramingCase:
    number: int
    seeds: tuple[str, ...]  # the valid requests it started from, in the order sent
    mutations: tuple[str, ...]
    data: bytes

    def may_get_html_error(self, status: int) -> bool:
        """An HTML error with this status may come back: a request says it is a browser's, or (a 400) posts to the
        page, whose contract for a form it cannot use is its HTML 400."""
        return BROWSER_ACCEPT in self.data or (status == 400 and PAGE_POST.search(self.data) is not None)


def _split(request: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _join(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _mutate(rng: random.Random, request: bytes) -> tuple[str, bytes]:
    lines, body = _split(request)
    kind = rng.choice(
        ["byte", "byte", "add header", "repeat header", "drop header", "length", "method", "target", "version"]
        + ["cut body", "pad body", "chunked body"]
    )
    if kind == "byte":
        head = bytearray(b"\r\n".join(lines))
        what = edit_byte(rng, head, ODD_BYTES)
        return what, bytes(head) + b"\r\n\r\n" + body
    if kind == "add header":
        header = rng.choice(ODD_HEADERS)
        lines.insert(rng.randrange(1, len(lines) + 1), header)
        return f"add {header[:40]!r}", _join(lines, body)
    if kind == "repeat header" and len(lines) > 1:
        line = lines[rng.randrange(1, len(lines))]
        lines.insert(rng.randrange(1, len(lines) + 1), line)
        return f"repeat {line[:40]!r}", _join(lines, body)
    if kind == "drop header" and len(lines) > 1:
        line = lines.pop(rng.randrange(1, len(lines)))
        return f"drop {line[:40]!r}", _join(lines, body)
    if kind == "length":
        delta = rng.choice([-len(body) - 1, -1, 1, 7, 1 << 20])
        length = b"Content-Length: %d" % max(0, len(body) + delta)
        lines = [line for line in lines if not line.lower().startswith(b"content-length:")] + [length]
        return f"Content-Length {len(body)} -> {length[16:].decode()}", _join(lines, body)
    if kind in ("method", "target", "version"):
        method, _, rest = lines[0].partition(b" ")
        target, _, version = rest.rpartition(b" ")
        parts = {"method": method, "target": target, "version": version}
        parts[kind] = rng.choice({"method": METHODS, "target": TARGETS, "version": VERSIONS}[kind])
        lines[0] = b" ".join(p for p in (parts["method"], parts["target"], parts["version"]) if p)
        return f"{kind} {parts[kind][:40]!r}", _join(lines, body)
    if kind == "cut body" and body:
        return "body cut", _join(lines, body[: rng.randrange(len(body))])
    if kind == "pad body":
        return "body padded", _join(lines, body + rng.choice([b"\r\n", b"garbage", b"\x00" * 100]))
    if kind == "chunked body":
        lines = [line for line in lines if not line.lower().startswith(b"content-length:")]
        lines.append(b"Transfer-Encoding: chunked")
        size = rng.choice([b"%x" % len(body), b"%x" % (len(body) + 3), b"zz", b"-1", b"%x;ext=1" % len(body)])
        return f"chunked, size {size.decode()}", _join(lines, size + b"\r\n" + body + b"\r\n0\r\n\r\n")
    return "unchanged", request


def framing_cases(seed: int, count: int) -> list[FramingCase]:
    """`count` cases; every fifth sends a second request (valid or mutated) on the same connection after the first."""
    rng = random.Random(seed)
    names = list(SEEDS)
    cases = []
    for number in range(count):
        first = rng.choice(names)
        data, mutations = SEEDS[first], []
        for _ in range(rng.randint(1, 3)):
            what, data = _mutate(rng, data)
            mutations.append(what)
        seeds = [first]
        if number % 5 == 4:
            second = rng.choice(names)
            follow = SEEDS[second]
            if rng.random() < 0.5:
                what, follow = _mutate(rng, follow)
                mutations.append(f"then {second}: {what}")
            else:
                mutations.append(f"then {second}")
            data += follow
            seeds.append(second)
        cases.append(FramingCase(number, tuple(seeds), tuple(mutations), data))
    return cases


STATUS_LINE = re.compile(rb"(?:^|(?<=\n))HTTP/1\.[01] (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n")


def answers_in(received: bytes) -> list[tuple[int, dict[str, list[str]]]]:
    """Each (status, headers by lower-case name) of the final HTTP/1.x answers in what a connection received
    (an interim 100 Continue is not one)."""
    found = []
    for match in STATUS_LINE.finditer(received):
        if match.group(1).startswith(b"1"):
            continue
        headers: dict[str, list[str]] = {}
        for line in match.group(2).split(b"\r\n")[:-1]:
            name, _, value = line.partition(b":")
            headers.setdefault(name.strip().lower().decode("latin-1"), []).append(value.strip().decode("latin-1"))
        found.append((int(match.group(1)), headers))
    return found


HANG_S = 12.0  # nginx gives up on a silent client after 10 s: a connection open longer than this hangs


@dataclass(frozen=True)
class Exchange:
    received: bytes
    seconds: float
    hung: bool  # the connection was still open HANG_S after the request was sent


def exchange(port: int, source: str, data: bytes) -> Exchange:
    """Send `data` to 127.0.0.1:`port` from `source`, half-close, and read until the server closes (nginx answers
    a half-closed client, then ends the connection at once)."""
    started, received = time.monotonic(), bytearray()
    with socket.create_connection(("127.0.0.1", port), 5, source_address=(source, 0)) as sock:
        sock.settimeout(HANG_S)
        try:
            with contextlib.suppress(ConnectionError):  # nginx may answer and close before it has read everything
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionError:  # reset with unread data: what came before may be lost; nothing hangs
            pass
        except TimeoutError:
            return Exchange(bytes(received), time.monotonic() - started, hung=True)
    return Exchange(bytes(received), time.monotonic() - started, hung=False)
