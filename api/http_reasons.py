"""What an HTTP error raised by werkzeug says to a program, for the JSON error bodies of the API's routes: a 404
for a path no route takes and a 405 name the path and method (with what is allowed); the others, werkzeug's
description. `carry` gives such a JSON answer the error's status and headers."""

from flask import Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound


def carry(response: Response, exc: HTTPException) -> Response:
    """`response` with `exc`'s status and the headers it carries (a 405's Allow), not its HTML content type."""
    response.status_code = exc.code or 500
    response.headers.extend((k, v) for k, v in exc.get_headers() if k.lower() != "content-type")
    return response


def reason(exc: HTTPException) -> str:
    path = request.path[:200]
    if isinstance(exc, MethodNotAllowed):
        allowed = f"; allowed: {', '.join(sorted(exc.valid_methods))}" if exc.valid_methods else ""
        return f"method {request.method[:20]} not allowed on {path}{allowed}"
    if isinstance(exc, NotFound) and request.url_rule is None:
        return f"no such route: {path}"
    return exc.description or exc.name
