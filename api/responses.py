"""Response shapes shared by views and error handlers: the `/predict` JSON contract and page fallbacks."""

import logging

from flask import Flask, Response, flash, jsonify, redirect, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import http_reasons
import metrics
import settings
import v2_errors
from errors import PredictError

log = logging.getLogger(__name__)

# Routes that answer JSON or images to programs, never the page: their HTTP errors are `{"error": "…"}` too.
JSON_ERROR_ROUTES = frozenset({"/health", "/ready", "/ready/details", "/ready/accept", "/metrics", "/heatmap.png"})


def _header_safe(text: str) -> str:
    """One printable ASCII line: header values cannot carry newlines or arbitrary unicode."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in " ".join(text.split()))[:200]


def _failure(status: int, error: str | None = None) -> Response:
    body = {"success": False, "prediction": None, "score": None}
    if error is not None:
        body["error"] = error
    response = jsonify(body)
    response.status_code = status
    return response


def program_error(status: int, error: str, retry_later: bool = False) -> Response:
    """An error for a program in its route's shape: the course's on /predict, feedback's own (as its view and nginx
    answer) on /feedback, `{"error": …}` elsewhere; with Retry-After when the client should retry later."""
    if request.path == "/predict":
        response = _failure(status, error)
    else:
        response = jsonify(success=False, error=error) if request.path == "/feedback" else jsonify(error=error)
        response.status_code = status
    if retry_later:
        response.headers["Retry-After"] = str(settings.retry_after_s())
    return response


def bad_request(reason: str, kind: str = "bad_request") -> Response:
    """400 with exactly the three keys; the reason goes to the X-Error header and the log."""
    log.info("POST /predict rejected: %s", reason)
    metrics.count_error(kind)
    response = _failure(400)
    response.headers["X-Error"] = _header_safe(reason)
    return response


def predict_error(exc: PredictError) -> Response:
    """Typed prediction error → its status; one the client should retry later (`retry_later`) carries Retry-After."""
    if exc.status == 400:
        return bad_request(str(exc), kind=exc.kind)
    log.warning("POST /predict failed (%s): %s", exc.kind, exc)
    metrics.count_error(exc.kind)
    response = program_error(exc.status, str(exc), exc.retry_later)
    response.headers["X-Error"] = _header_safe(str(exc))
    return response


def wants_json() -> bool:
    """True when the client ranks JSON above HTML in Accept (an API client; a tie, as `*/*`, is not)."""
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


def prefers_html() -> bool:
    """True when the client ranks HTML above JSON (a browser); False for a tie (`*/*`, no Accept) or JSON first."""
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"]


def upload_too_large(limit: int | None) -> str:
    """What a refused upload's answer says, on /predict, on the page and in the page's return from nginx."""
    return f"upload larger than the limit of {limit} bytes"


def _within_length_limit() -> bool:
    """True when werkzeug's 413 came for a body within the route's length limit: then a form limit refused it (more
    parts than MAX_FORM_PARTS, or a text field over MAX_FORM_MEMORY_SIZE), which werkzeug reports the same way."""
    length, limit = request.content_length, request.max_content_length
    return length is not None and limit is not None and length <= limit


def _is_api() -> bool:
    """/predict, a JSON client of /feedback, and a program posting to the page that ranks JSON above HTML: errors
    as JSON, never a redirect to the page."""
    return (
        request.path == "/predict"
        or (request.path == "/feedback" and (request.is_json or wants_json()))
        or (request.path == "/" and request.method == "POST" and wants_json())
    )


def register_error_handlers(app: Flask) -> None:
    """413 and other HTTP errors as JSON on /predict, as a flash message on the page; unexpected errors logged."""

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        form_limit = _within_length_limit()
        if form_limit:
            message = (
                f"form has more than {request.max_form_parts} parts, "
                f"or a text field over {request.max_form_memory_size} bytes"
            )
        elif request.path == "/feedback":
            message = f"feedback larger than the limit of {request.max_content_length} bytes"
        else:
            message = upload_too_large(request.max_content_length)
        metrics.count_error("form_limit" if form_limit else "too_large")
        if _is_api():
            return program_error(413, message)
        flash(f"Upload refused: {message}" if form_limit else f"File too large: {message}", "error")
        return redirect(url_for("views.index"))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Each route's own error shape; werkzeug's HTML only for a browser on the page or a path no route takes."""
        if v2_errors.owns(request.path):  # /v2 paths no route takes: a blueprint's handlers never see them
            return v2_errors.http_error(exc)
        if exc.code == 400 and request.path == "/predict":
            return bad_request(exc.description or "bad request")
        if _is_api() or request.path in JSON_ERROR_ROUTES or not prefers_html():
            return http_reasons.carry(program_error(exc.code or 500, http_reasons.reason(exc)), exc)
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        metrics.count_error("internal")
        if _is_api():
            return program_error(500, "internal error")
        if request.method == "POST":  # the page's forms: back to the form with a message, never a bare 500
            flash("Something went wrong; please try again.", "error")
            return redirect(url_for("views.index"))
        return Response("internal error\n", status=500, mimetype="text/plain")
