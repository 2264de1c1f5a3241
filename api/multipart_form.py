"""multipart/form-data parsed by the `multipart` package's push parser, behind werkzeug's FormDataParser.

werkzeug compiles two regular expressions from each body's boundary (about 0.2 ms), and clients pick a new boundary
per request: its parse of a 70 KB photo upload costs about 0.3 ms of the API's CPU, this one's about 0.06 ms
(`multipart` finds the boundary with bytes.find). Routes see the same `request.form` and `request.files` (werkzeug's
FileStorage, from the same stream factory) and the same 413s (MAX_FORM_PARTS, MAX_FORM_MEMORY_SIZE).

Where werkzeug is lenient, `multipart` holds to RFC 7578 (a delimiter without its line break, as werkzeug's own
test client writes an empty file part; bare line feeds): a body it refuses is parsed again by werkzeug's parser,
from the bytes read, so every body parses as before. A body neither reads is an empty form (werkzeug's silent
mode), which each route answers with its 400.
"""

import io
from typing import IO

import flask
import multipart
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import File

CHUNK_BYTES = 64 * 1024  # read size, as werkzeug's parser
# Bodies up to werkzeug's spool size (kept in memory by its spool anyway) are parsed here, their bytes kept until the
# parse ends; a larger one, which werkzeug spools to disk, goes to werkzeug's parser, a small cost next to its decode.
PUSH_PARSE_MAX_BYTES = 500 * 1024
MAX_PART_HEADERS = 16  # a browser sends 2 or 3 per part; more makes the body malformed, not too large
MAX_PART_HEADER_BYTES = 8 * 1024  # one header line: nginx allows no longer line in the request's head either


class PushFormDataParser(FormDataParser):
    """werkzeug's FormDataParser (url-encoded forms, limits, silent errors) with a faster multipart parse."""

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> tuple[IO[bytes], MultiDict, MultiDict]:
        boundary = options.get("boundary", "").encode("ascii")  # not ASCII: a ValueError, so an empty form
        if not boundary:
            raise ValueError("Missing boundary")
        if content_length is None or content_length > PUSH_PARSE_MAX_BYTES:
            return super()._parse_multipart(stream, mimetype, content_length, options)
        body: list[bytes] = []  # what was read, for werkzeug's parser if this one refuses the body
        try:
            fields, files = self._push_parse(_Recorded(stream, body), boundary, content_length)
        except multipart.MultipartError:
            body.append(stream.read())
            _, form, file_parts = super()._parse_multipart(
                io.BytesIO(b"".join(body)), mimetype, content_length, options
            )
            return stream, form, file_parts
        return stream, self.cls(fields), self.cls(files)

    def _push_parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[list[tuple[str | None, str]], list[tuple[str | None, FileStorage]]]:
        parser = multipart.PushMultipartParser(
            boundary, max_header_size=MAX_PART_HEADER_BYTES, max_header_count=MAX_PART_HEADERS
        )
        werkzeugs = MultiPartParser(self.stream_factory)  # its spool and charset rules, not its parse
        fields: list[tuple[str | None, str]] = []
        files: list[tuple[str | None, FileStorage]] = []
        parts = 0
        segment: multipart.MultipartSegment | None = None
        headers = Headers()
        name: str | None = None  # werkzeug's, from the segment's Content-Disposition
        filename: str | None = None
        chunks: list[bytes] = []  # a text field's bytes
        spool: IO[bytes] | None = None  # a file's
        for data in iter(lambda: stream.read(CHUNK_BYTES), b""):
            for event in parser.parse(data):
                if isinstance(event, multipart.MultipartSegment):
                    parts += 1
                    if self.max_form_parts is not None and parts > self.max_form_parts:
                        raise RequestEntityTooLarge()
                    if any("\r" in line or "\n" in line for header in event.headerlist for line in header):
                        raise multipart.ParserError("a bare line break in a part's header")  # werkzeug splits there
                    # werkzeug's reading of the disposition: a name may be missing, filename* counts, a path stays
                    segment, chunks, headers = event, [], Headers(event.headerlist)
                    options = parse_options_header(headers.get("Content-Disposition"))[1]
                    name, filename = options.get("name"), options.get("filename")
                    spool = None
                    if filename is not None:
                        spool = werkzeugs.start_file_streaming(File(name, filename, headers), content_length)
                elif event is None:  # the part's end
                    if spool is None:
                        text = b"".join(chunks).decode(werkzeugs.get_part_charset(headers), "replace")
                        fields.append((name, text))
                    else:
                        spool.seek(0)
                        files.append((name, FileStorage(spool, filename, name, headers=headers)))
                elif spool is not None:
                    spool.write(event)
                else:
                    chunks.append(event)
                    limit = self.max_form_memory_size
                    if limit is not None and segment is not None and segment.bytes_received > limit:
                        raise RequestEntityTooLarge()
        parser.close()  # a ParserError when the closing delimiter never came
        return fields, files


class _Recorded:
    """A stream that keeps every chunk read from it in `chunks`."""

    def __init__(self, stream: IO[bytes], chunks: list[bytes]) -> None:
        self.stream, self.chunks = stream, chunks

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        self.chunks.append(data)
        return data


class Request(flask.Request):
    """Flask's request with PushFormDataParser behind `request.form` and `request.files`."""

    form_data_parser_class = PushFormDataParser
