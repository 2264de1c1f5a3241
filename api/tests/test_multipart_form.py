"""multipart_form: the same form, files and spools as werkzeug's own parser, for what clients send (read by the
push parser, never handed back to werkzeug) and for the multipart fuzzer's broken bodies; werkzeug's limits."""

import io
import random

import pytest
from flask import request
from urllib3 import encode_multipart_formdata
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, default_stream_factory
from werkzeug.http import parse_options_header
from werkzeug.test import EnvironBuilder

from app import app as default_app
from multipart_form import PUSH_PARSE_MAX_BYTES, PushFormDataParser
from testkit import photo as read_photo
from testkit.framing_cases import form_body, form_part
from testkit.multipart_cases import multipart_cases

LIMITS = {
    "max_form_memory_size": default_app.config["MAX_FORM_MEMORY_SIZE"],
    "max_form_parts": default_app.config["MAX_FORM_PARTS"],
}
NAMES = ["file", "top_k", "label", "é", "name with spaces", "a" * 200, ""]


@pytest.fixture
def handed_back(monkeypatch) -> list[bytes]:
    """The bodies the push parser refused and handed to werkzeug's."""
    refused, werkzeugs = [], FormDataParser._parse_multipart

    def spy(self, stream, *args):
        if isinstance(self, PushFormDataParser):
            refused.append(stream.getvalue())
        return werkzeugs(self, stream, *args)

    monkeypatch.setattr(FormDataParser, "_parse_multipart", spy)
    return refused


def parsed(parser_class: type[FormDataParser], body: bytes, content_type: str):
    """What a route would see: the fields, each file (name, filename, type, bytes) and each spool asked for."""
    spools = []

    def factory(**kwargs):
        spools.append(kwargs)
        return default_stream_factory(**kwargs)

    mimetype, options = parse_options_header(content_type)
    parser = parser_class(stream_factory=factory, **LIMITS)
    try:
        _, form, files = parser.parse(io.BytesIO(body), mimetype, len(body), options)
    except RequestEntityTooLarge:
        return "413"
    uploads = [(name, f.filename, f.content_type, f.read()) for name, f in files.items(multi=True)]
    return list(form.items(multi=True)), uploads, spools


def client_form(rng: random.Random) -> list[tuple]:
    """Fields and files as a client sends them: any names and text, file bytes that look like delimiters."""
    parts = []
    for _ in range(rng.randint(1, 6)):
        name = rng.choice(NAMES)
        if rng.random() < 0.5:
            parts.append((name, rng.choice(["", "5", "ünïcödé", "line\r\nbreak", "--b0undary", "x" * 20_000])))
        else:
            size = rng.choice([0, 1, 100, 20_000, 70_000])
            content = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * max(1, size // 64)
            content = content[:size] + rng.choice([b"", b"\r\n", b"\r\n--", b"\r\n--x\r\n"])
            parts.append((name, (rng.choice(["cat.jpg", "", "dir/ca t.png", "ü.gif"]), content, "image/jpeg")))
    return parts


def test_what_clients_send_parses_as_werkzeug_parses_it_without_werkzeug(handed_back):
    rng = random.Random(20261206)
    for _ in range(150):
        body, content_type = encode_multipart_formdata(client_form(rng))
        ours = parsed(PushFormDataParser, body, content_type)
        assert ours == parsed(FormDataParser, body, content_type)
        assert ours != "413" and ours[0] + ours[1], "a form with parts parsed as empty"
    assert handed_back == []


def test_the_fuzzers_broken_bodies_parse_as_werkzeug_parses_them(handed_back):
    """Seeded broken bodies: the same fields, files and 413s; those the push parser refuses go to werkzeug."""
    cases = multipart_cases(read_photo(), seed=20261207, count=1500)
    for case in cases:
        ours, werkzeugs = (parsed(cls, case.body, case.content_type) for cls in (PushFormDataParser, FormDataParser))
        assert ours[:2] == werkzeugs[:2], (case.number, case.mutations)  # a body handed back asked for spools twice
    assert 0 < len(handed_back) < len(cases)  # both ways taken


@pytest.mark.parametrize("charset", ["iso-8859-1", "ISO-8859-1", "utf-32", "nonsense"])
def test_a_text_fields_charset_is_read_as_werkzeug_reads_it(handed_back, charset):
    """werkzeug decodes a field in the part's charset when it is on its list, else as UTF-8."""
    part = form_part(b'form-data; name="label"', [f"Content-Type: text/plain; charset={charset}".encode()], b"caf\xe9")
    body, content_type = form_body([part], b"b0undary"), "multipart/form-data; boundary=b0undary"
    ours = parsed(PushFormDataParser, body, content_type)
    assert ours == parsed(FormDataParser, body, content_type)
    assert ours[0] == [("label", "café" if charset.lower() == "iso-8859-1" else "caf\ufffd")]
    assert handed_back == []


def test_an_empty_file_as_werkzeugs_test_client_writes_it_is_still_a_file(handed_back):
    """werkzeug's encoder leaves out the line break before the delimiter that ends an empty part."""
    environ = EnvironBuilder(method="POST", data={"file": (io.BytesIO(b""), "")}).get_environ()
    body, content_type = environ["wsgi.input"].read(), environ["CONTENT_TYPE"]
    assert parsed(PushFormDataParser, body, content_type)[1] == [("file", "", "application/octet-stream", b"")]
    assert handed_back == [body]


def test_a_body_werkzeug_would_spool_to_disk_goes_to_werkzeugs_parser(handed_back):
    """Recorded for a second parse, it would be held in memory."""
    body, content_type = encode_multipart_formdata([("file", ("big.jpg", b"\0" * PUSH_PARSE_MAX_BYTES, "image/jpeg"))])
    ours = parsed(PushFormDataParser, body, content_type)
    assert ours == parsed(FormDataParser, body, content_type) and ours[1][0][3] == b"\0" * PUSH_PARSE_MAX_BYTES
    assert handed_back == [body]


@pytest.mark.parametrize(
    "fields",
    [
        [(f"f{i}", "1") for i in range(LIMITS["max_form_parts"] + 1)],
        [("label", "x" * (LIMITS["max_form_memory_size"] + 1))],
    ],
    ids=["one part too many", "a text field one byte too long"],
)
def test_werkzeugs_form_limits_are_a_413(handed_back, fields):
    at_the_limit = fields[:-1] or [("label", "x" * LIMITS["max_form_memory_size"])]
    assert parsed(PushFormDataParser, *encode_multipart_formdata(fields)) == "413"
    assert parsed(PushFormDataParser, *encode_multipart_formdata(at_the_limit)) != "413"
    assert handed_back == []


def test_the_app_reads_uploads_with_the_push_parser(app, handed_back, monkeypatch):
    pushed = []
    push = PushFormDataParser._push_parse
    monkeypatch.setattr(PushFormDataParser, "_push_parse", lambda self, *args: pushed.append(1) or push(self, *args))
    body, content_type = encode_multipart_formdata([("file", ("cat.jpg", read_photo(), "image/jpeg"))])
    with app.test_request_context("/predict", method="POST", data=body, content_type=content_type):
        assert request.files["file"].read() == read_photo() and request.files["file"].filename == "cat.jpg"
    assert pushed == [1] and handed_back == []
