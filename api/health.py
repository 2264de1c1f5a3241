"""Liveness (`/health`: the process answers, no Redis) and readiness (`/ready`: Redis + a warmed worker)."""

from flask import Blueprint, jsonify

import redis

import fleet
import job_client

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """Always 200 while the process can answer: never touches Redis, so load or outages never fail it."""
    return jsonify(status="ok")


@bp.get("/ready")
def ready():
    """200 when Redis answers and at least one live worker reports ready="1"; 503 otherwise, with details."""
    body: dict = {"status": "not_ready", "redis": False, "workers": [], "workers_ready": 0}
    try:
        r = job_client.client()
        r.ping()
        body["redis"] = True
        workers = fleet.live_workers(r)
    except redis.RedisError as exc:
        body["error"] = f"redis unreachable: {type(exc).__name__}"
        return jsonify(body), 503
    body["workers"] = [{k: w.get(k) for k in ("name", "host", "pid", "model", "variant", "ready")} for w in workers]
    body["workers_ready"] = sum(1 for w in workers if w["ready"])
    if body["workers_ready"]:
        body["status"] = "ready"
        return jsonify(body), 200
    body["error"] = "no live worker with its model loaded"
    return jsonify(body), 503
