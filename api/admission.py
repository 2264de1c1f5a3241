"""Admission control for `/predict`: shed at once what cannot be answered in time, instead of queueing it.

The service-wide bound on requests inside the service (MAX_INFLIGHT) is enforced by nginx, the one place that sees
every request wherever it waits (nginx, gunicorn's accept queue and threads, the job queue). This module is the
API's half: nginx stamps `X-Request-Start: t=<unix seconds>` when the whole request has arrived (always its own
value, never the client's), and a request that already waited MAX_QUEUE_WAIT_S for a gunicorn thread gets
503 + Retry-After before any work is done for it. The same stamp starts the request's deadline (REQUEST_TIMEOUT_S
covers the wait for a thread, for decode budget and for the worker); without it, the request's first reading here.
"""

from __future__ import annotations

import logging
import time

import flask
from flask import Request, Response, jsonify

import metrics
import settings

log = logging.getLogger(__name__)
SHED_MESSAGE = "service at its admission limit; retry later"


def queue_wait_s(request: Request, now: float | None = None) -> float:
    """Seconds since nginx handed the request over (0 without a readable X-Request-Start header)."""
    raw = request.headers.get("X-Request-Start", "")
    try:
        started = float(raw.removeprefix("t="))
    except ValueError:
        return 0.0
    waited = (time.time() if now is None else now) - started
    return waited if 0 < waited < 3600 else 0.0


def arrival(request: Request) -> float:
    """Unix time the request arrived: nginx's X-Request-Start, else the first time this is asked (request start)."""
    now = time.time()
    first = request.environ.setdefault("ml.arrival", now)
    waited = queue_wait_s(request, now)
    return now - waited if waited else first


def deadline(request: Request) -> float:
    """Unix time by which the request must be answered: arrival + REQUEST_TIMEOUT_S."""
    return arrival(request) + settings.REQUEST_TIMEOUT_S


def current_deadline() -> float:
    """The deadline of the request being served; outside a request, REQUEST_TIMEOUT_S from now."""
    return deadline(flask.request) if flask.has_request_context() else time.time() + settings.REQUEST_TIMEOUT_S


def shed_response(reason: str) -> Response:
    """The `/predict` 503 body (three keys + error) with Retry-After, like a full queue."""
    response = jsonify({"success": False, "prediction": None, "score": None, "error": SHED_MESSAGE})
    response.status_code = 503
    response.headers["Retry-After"] = str(settings.retry_after_s())
    response.headers["X-Error"] = reason
    return response


def check(request: Request) -> Response | None:
    """None to admit the request; a 503 response to shed it."""
    waited = queue_wait_s(request)
    limit = settings.MAX_QUEUE_WAIT_S
    if limit > 0 and waited > limit:
        metrics.count_error("shed")
        log.warning("shed /predict: waited %.2f s for a thread (limit %.2f s)", waited, limit)
        return shed_response(f"waited {waited:.1f} s for a request thread")
    return None
