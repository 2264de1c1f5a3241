"""Liveness (`/health`: the process answers, no Redis) and two readiness views.

`/ready`: the whole service can answer now (Redis + a warmed worker); public, so it names no worker, host or pid.
`/ready/details`: the same with each worker's name, host and pid (nginx serves it to local clients only, like
/metrics). `/ready/accept`: this API replica can accept work (Redis answers) — the cluster's readiness probe,
since a scaled-to-zero worker pool is woken only by jobs the API accepted.
"""

import logging

from flask import Blueprint, jsonify

import redis

import fleet
import job_client

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
PUBLIC_FIELDS = ("model", "variant", "runtime", "model_version", "classes", "threads", "ready")  # per worker in /ready
DETAIL_FIELDS = ("name", "host", "pid", *PUBLIC_FIELDS)  # per worker in /ready/details


@bp.get("/health")
def health():
    """Always 200 while the process can answer: never touches Redis, so load or outages never fail it."""
    return jsonify(status="ok")


@bp.get("/ready")
def ready():
    """200 when Redis answers and at least one live worker reports ready="1"; 503 otherwise, with the reason."""
    return _readiness(PUBLIC_FIELDS)


@bp.get("/ready/details")
def ready_details():
    """/ready with each worker's name, host and pid (operators only: nginx allows local clients)."""
    return _readiness(DETAIL_FIELDS)


def _readiness(fields: tuple[str, ...]):
    body: dict = {"status": "not_ready", "redis": False, "workers": [], "workers_ready": 0}
    try:
        r = job_client.client()
        unqueueable = job_client.why_unqueueable(r)
        body["redis"] = True
        workers = fleet.live_workers(r)
    except redis.ResponseError as exc:  # Redis answers, but a key of ours holds another type of value
        log.warning("readiness: Redis answered an error: %s", exc)
        body["error"] = "redis answered an error (the API's log names it)"
        return jsonify(body), 503
    except redis.RedisError as exc:
        body["error"] = f"redis unreachable: {type(exc).__name__}"
        return jsonify(body), 503
    if unqueueable:
        body["error"] = unqueueable
        return jsonify(body), 503
    body["workers"] = [{k: w.get(k) for k in fields} for w in workers]
    body["workers_ready"] = sum(1 for w in workers if w["ready"])
    body["model_versions"] = sorted({w.get("model_version") or "" for w in workers if w["ready"]})
    if body["workers_ready"]:
        body["status"] = "ready"
        return jsonify(body), 200
    body["error"] = "no live worker with its model loaded"
    return jsonify(body), 503


@bp.get("/ready/accept")
def ready_to_accept():
    """200 when jobs can be queued (Redis answers, the job stream is one), 503 otherwise; workers are not required."""
    try:
        unqueueable = job_client.why_unqueueable(job_client.client())
    except redis.RedisError as exc:
        return jsonify(status="not_ready", redis=False, error=f"redis unreachable: {type(exc).__name__}"), 503
    if unqueueable:
        return jsonify(status="not_ready", redis=True, error=unqueueable), 503
    return jsonify(status="ready", redis=True), 200
