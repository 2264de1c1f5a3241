"""A body the route left unread is read before the answer goes out, so nginx can finish sending it."""

from __future__ import annotations

import io

import body_drain
from app import app


def _refusing_app(environ, start_response):
    """Answers at once, reading none of the body (as a 413 from the content-length limit does)."""
    start_response("413 Request Entity Too Large", [("Content-Type", "application/json")])
    return [b'{"error": "too large"}']


def test_an_unread_body_is_drained_before_the_answer_is_returned():
    body = io.BytesIO(b"a=b&" * 100_000)
    seen = []
    result = body_drain.DrainBody(_refusing_app, limit=1_000_000)({"wsgi.input": body}, lambda *a: seen.append(a))
    assert list(result) == [b'{"error": "too large"}'] and seen[0][0].startswith("413")
    assert body.tell() == 400_000 and body.read() == b""


def test_draining_stops_at_its_limit_and_costs_nothing_for_a_read_body():
    body = io.BytesIO(b"x" * 300_000)
    assert body_drain.drain(body, 200_000) == 200_000 and body.tell() == 200_000
    assert body_drain.drain(body, 200_000) == 100_000
    assert body_drain.drain(body, 200_000) == 0 and body_drain.drain(None, 10) == 0


def test_the_app_drains_a_form_it_refuses_unread():
    from werkzeug.test import EnvironBuilder

    assert isinstance(app.wsgi_app, body_drain.DrainBody)
    form = b"a=b&" * 50_000  # url-encoded, over its 64 KiB cap: refused before any of it is read
    environ = EnvironBuilder(
        path="/", method="POST", data=form, content_type="application/x-www-form-urlencoded"
    ).get_environ()
    statuses = []
    b"".join(app(environ, lambda status, headers, *exc: statuses.append(status)))
    assert statuses and statuses[0][:1] in ("3", "4"), statuses  # refused, never a 5xx
    assert environ["wsgi.input"].read() == b""  # and nothing of the body is left for the server to choke on
