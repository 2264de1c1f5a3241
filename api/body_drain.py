"""Read what a route left of the request body before its answer goes out.

A request refused before its body is read (a url-encoded form over its cap, any 413 from the content-length limit)
leaves the body in the socket. gunicorn then closes the connection with those bytes unread, and nginx, still
sending the body it buffered, meets a broken pipe and answers 503 "API not reachable" in place of the API's 4xx.
Reading the rest first lets the 4xx through. Bodies reach the API whole and bounded (nginx buffers them and
refuses larger ones), so the read is bounded too; a fully read body costs one empty read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

CHUNK = 64 * 1024


def drain(stream: BinaryIO | None, limit: int) -> int:
    """Read and drop at most `limit` bytes left in `stream`; the number read."""
    read = 0
    while stream is not None and read < limit:
        chunk = stream.read(min(CHUNK, limit - read))
        if not chunk:
            break
        read += len(chunk)
    return read


class DrainBody:
    """WSGI middleware: after the app has answered, drain the request body (at most `limit` bytes) before the
    answer is handed to the server."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int) -> None:
        self.app, self.limit = app, limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = self.app(environ, start_response)
        drain(environ.get("wsgi.input"), self.limit)
        return result
