"""What an HTTP error raised by werkzeug says to a program, for the JSON error bodies of the API's routes: a 404
for a path no route takes and a 405 name the path and method (with what is allowed); the others, werkzeug's
description."""

from flask import request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound


def reason(exc: HTTPException) -> str:
    path = request.path[:200]
    if isinstance(exc, MethodNotAllowed):
        allowed = f"; allowed: {', '.join(sorted(exc.valid_methods))}" if exc.valid_methods else ""
        return f"method {request.method[:20]} not allowed on {path}{allowed}"
    if isinstance(exc, NotFound) and request.url_rule is None:
        return f"no such route: {path}"
    return exc.description or exc.name
