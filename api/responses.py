"""Response shapes shared by views and error handlers: the `/predict` JSON contract and page fallbacks."""

import logging

from flask import Flask, Response, flash, jsonify, redirect, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import metrics
import settings
from errors import PredictError, QueueFull

log = logging.getLogger(__name__)


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


def bad_request(reason: str, kind: str = "bad_request") -> Response:
    """400 with exactly the three keys; the reason goes to the X-Error header and the log."""
    log.info("POST /predict rejected: %s", reason)
    metrics.count_error(kind)
    response = _failure(400)
    response.headers["X-Error"] = _header_safe(reason)
    return response


def predict_error(exc: PredictError) -> Response:
    """Typed prediction error → its status; 503 for a full queue carries Retry-After."""
    if exc.status == 400:
        return bad_request(str(exc), kind=exc.kind)
    log.warning("POST /predict failed (%s): %s", exc.kind, exc)
    metrics.count_error(exc.kind)
    response = _failure(exc.status, str(exc))
    response.headers["X-Error"] = _header_safe(str(exc))
    if isinstance(exc, QueueFull):
        response.headers["Retry-After"] = str(settings.retry_after_s())
    return response


def wants_json() -> bool:
    """True when the client prefers JSON to HTML (API clients, not browsers)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _is_api() -> bool:
    """/predict, and a JSON client of /feedback: errors as JSON, never a redirect to the page."""
    return request.path == "/predict" or (request.path == "/feedback" and (request.is_json or wants_json()))


def register_error_handlers(app: Flask) -> None:
    """413 and other HTTP errors as JSON on /predict, as a flash message on the page; unexpected errors logged."""

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = request.max_content_length if request.path == "/feedback" else app.config.get("MAX_CONTENT_LENGTH")
        message = f"{'feedback' if request.path == '/feedback' else 'upload'} larger than the limit of {limit} bytes"
        metrics.count_error("too_large")
        if _is_api():
            return _failure(413, message)
        flash(f"File too large: {message}", "error")
        return redirect(url_for("views.index"))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if _is_api():
            if exc.code == 400:
                return bad_request(exc.description or "bad request")
            response = _failure(exc.code or 500, exc.name)
            response.headers.extend((k, v) for k, v in exc.get_headers() if k.lower() != "content-type")
            return response
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        metrics.count_error("internal")
        if _is_api():
            return _failure(500, "internal error")
        if request.method == "POST":  # the page's forms: back to the form with a message, never a bare 500
            flash("Something went wrong; please try again.", "error")
            return redirect(url_for("views.index"))
        return Response("internal error\n", status=500, mimetype="text/plain")
