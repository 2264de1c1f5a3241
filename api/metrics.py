"""Prometheus metrics of the API processes (metrics_server.py shows them, with the whole service's, on `/metrics`).

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py before workers import this) makes every
process write its values to files that one scrape aggregates. Defining metrics here connects to nothing.
"""

import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "api_requests", "HTTP requests answered, by endpoint, method and status", ["endpoint", "method", "status"]
)
LATENCY = Histogram(
    "api_request_latency_seconds", "End-to-end request latency seen by the API", ["endpoint"], buckets=LATENCY_BUCKETS
)
ERRORS = Counter("api_errors", "Requests that ended in an error, by kind", ["kind"])
IN_FLIGHT = Gauge("api_requests_in_flight", "Requests being handled now", multiprocess_mode="livesum")
QUEUED = Histogram(
    "api_job_queued_seconds", "Time a job waited in the queue (reported by the worker)", buckets=STAGE_BUCKETS
)
INFERENCE = Histogram(
    "api_job_inference_seconds", "Model time of the batch that answered a job (worker)", buckets=STAGE_BUCKETS
)
BATCH = Histogram(
    "api_job_batch_size", "Size of the batch that answered a job", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
)

CACHE = Counter(
    "api_response_cache",
    "Response cache lookups: hit, miss, no_model (no single live model: not looked up) or invalid (an entry that is not an answer)",
    ["result"],
)
PREPROCESS = Histogram(
    "api_preprocess_seconds", "Decoding one upload to the 224x224x3 model pixels, in the API", buckets=STAGE_BUCKETS
)

# Label values are bounded: any other method (clients can send arbitrary tokens) is counted as "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def count_cache(result: str) -> None:
    CACHE.labels(result=result if result in ("hit", "miss", "no_model", "invalid", "unreadable") else "other").inc()


def count_error(kind: str) -> None:
    ERRORS.labels(kind=kind).inc()


def observe_job(result: dict[str, Any]) -> None:
    """Record the worker-side timings carried by a successful result."""
    for hist, key, scale in ((QUEUED, "queued_ms", 1e-3), (INFERENCE, "inference_ms", 1e-3), (BATCH, "batch_size", 1)):
        value = result.get(key)
        if isinstance(value, (int, float)) and value >= 0:
            hist.observe(value * scale)


def _before() -> None:
    g.metrics_start = time.perf_counter()
    IN_FLIGHT.inc()


def _after(response: Response) -> Response:
    start = g.pop("metrics_start", None)
    if start is not None:
        IN_FLIGHT.dec()
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - start)
        method = request.method if request.method in KNOWN_METHODS else "other"
        REQUESTS.labels(endpoint=endpoint, method=method, status=str(response.status_code)).inc()
    return response


def init_app(app: Flask) -> None:
    """Time every request (GET /metrics itself is metrics_server.bp)."""
    app.before_request(_before)
    app.after_request(_after)
