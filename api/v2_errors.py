"""The Open Inference Protocol's error answers, `{"error": "…"}` with their status, for every route under /v2.

`register(bp)` gives a blueprint the handlers: the protocol's routes (v2_routes) and the repository control routes
(repository_control) answer every failure in this shape, an unexpected one included (500, logged), never with the
page's redirect that the app's own handlers give a POST elsewhere.
"""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import http_reasons
import metrics
import settings
from errors import PredictError
from v2_codec import V2Error

log = logging.getLogger(__name__)


def error(message: str, status: int, kind: str = "v2_bad_request") -> Response:
    """The protocol's error body; 503s carry Retry-After."""
    metrics.count_error(kind)
    response = jsonify({"error": message})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = str(settings.retry_after_s())
    return response


def _v2_error(exc: V2Error) -> Response:
    log.info("%s %s rejected: %s", request.method, request.path, exc)
    return error(str(exc), exc.status, exc.kind)


def _predict_error(exc: PredictError) -> Response:
    if exc.status >= 500:
        log.warning("%s %s failed (%s): %s", request.method, request.path, exc.kind, exc)
    return error(str(exc), exc.status, exc.kind)


def _redis_error(exc: redis.RedisError) -> Response:
    return error(f"queue unavailable: {type(exc).__name__}", 503, "broker_unavailable")


def owns(path: str) -> bool:
    """Whether `path` is the protocol's, routed or not: its errors are answered in the protocol's shape."""
    return path == "/v2" or path.startswith("/v2/")


def http_error(exc: HTTPException) -> Response:
    """An HTTP error in the protocol's shape, with the headers it carries (a 405's Allow). Also the app's answer
    for a /v2 path no route takes, or a method its route does not allow, which no blueprint handler sees."""
    unrouted = exc.code == 404 and request.url_rule is None
    return http_reasons.carry(
        error(http_reasons.reason(exc), exc.code or 400, "v2_not_found" if unrouted else "v2_http"), exc
    )


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error("internal error", 500, "internal")


def register(bp: Blueprint) -> None:
    """Answer the errors of `bp`'s routes in the protocol's shape (the app has its own 413 handler: the
    blueprint's wins on its routes)."""
    bp.register_error_handler(V2Error, _v2_error)
    bp.register_error_handler(PredictError, _predict_error)
    bp.register_error_handler(redis.RedisError, _redis_error)
    bp.register_error_handler(RequestEntityTooLarge, http_error)
    bp.register_error_handler(HTTPException, http_error)
    bp.register_error_handler(Exception, _unexpected)
