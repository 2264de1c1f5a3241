"""Each request's ID, to follow one request through nginx's access log, the API's log, its jobs (and so the
worker's log and the dead-letter stream) and its answer.

nginx sends X-Request-ID: the client's own when it is a plausible ID, else its `$request_id`. Reached without
nginx, the API makes one. Every answer carries it back in X-Request-ID, and every line the API logs while
serving the request names it.
"""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
PLAUSIBLE = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # the rule nginx's map applies (deploy/nginx/templates)


def current() -> str:
    """This request's ID, made (once) when the header is missing or not plausible; "" outside a request."""
    if not has_request_context():
        return ""
    rid = g.get("request_id")
    if rid is None:
        sent = request.headers.get(HEADER, "")
        rid = g.request_id = sent if PLAUSIBLE.fullmatch(sent) else uuid.uuid4().hex
    return rid


class LogFilter(logging.Filter):
    """Gives every record a `request_id`: the request's, or "-" outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current() or "-"
        return True


def init_app(app: Flask) -> None:
    """Every answer, error answers included, names its request."""

    @app.after_request
    def tag(response: Response) -> Response:
        response.headers[HEADER] = current()
        return response
