"""/health, /ready and /metrics against a real redis-server (and without one)."""

import io
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from resnet_common import protocol
from fakeworker import FakeWorker, heartbeat, ok_result

WORKER_METRICS = """# HELP worker_jobs_total Jobs answered
# TYPE worker_jobs_total counter
worker_jobs_total{outcome="ok"} %d
# HELP worker_batch_size Batch sizes
# TYPE worker_batch_size histogram
worker_batch_size_bucket{le="1.0"} 1
worker_batch_size_bucket{le="+Inf"} 2
worker_batch_size_count 2
worker_batch_size_sum 5
# HELP api_requests_total a name the worker must not hijack
# TYPE api_requests_total counter
api_requests_total 99
"""


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict, name: str, **labels) -> float:
    family = fams[name]
    matches = [s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert matches, (name, labels)
    return sum(matches)


def test_health_needs_no_redis(client):
    response = client.get("/health")  # REDIS_PORT points at a closed port (conftest)
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_ready_without_redis_is_503(client):
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["redis"] is False and response.get_json()["status"] == "not_ready"


def test_ready_without_workers_is_503(client, redis_env):
    body = client.get("/ready")
    assert body.status_code == 503 and body.get_json()["redis"] is True and body.get_json()["workers"] == []


def test_ready_needs_a_live_warmed_worker(client, redis_env):
    heartbeat(redis_env, "loading", ready=False)
    heartbeat(redis_env, "dead", ready=True, age_s=60)
    assert client.get("/ready").status_code == 503
    heartbeat(redis_env, "w1", ready=True, variant="int8", runtime="openvino", classes="5")
    response = client.get("/ready")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ready" and body["workers_ready"] == 1
    assert sorted(w["classes"] for w in body["workers"]) == ["1000", "5"]  # each one's head
    assert sorted((w["ready"], w["variant"]) for w in body["workers"]) == [(False, "fp32"), (True, "int8")]
    assert sorted(str(w["runtime"]) for w in body["workers"]) == ["None", "openvino"]  # what runs each model
    assert not any({"name", "host", "pid"} & set(w) for w in body["workers"])  # public: nothing to target
    details = client.get("/ready/details").get_json()
    assert {w["name"]: (w["ready"], w["variant"]) for w in details["workers"]} == {
        "loading": (False, "fp32"),
        "w1": (True, "int8"),
    }  # the stale heartbeat is not listed
    assert all(w["pid"] is not None for w in details["workers"])


def test_a_heartbeat_member_that_is_not_utf8_is_skipped_not_a_500(client, redis_env):
    heartbeat(redis_env, "w1", ready=True)
    redis_env.zadd(protocol.HEARTBEATS_KEY, {b"\xff\xfe": time.time()})  # a hand edit: cannot be a worker
    response = client.get("/ready")
    assert response.status_code == 200 and response.get_json()["workers_ready"] == 1
    assert len(response.get_json()["workers"]) == 1
    assert client.get("/v2/health/ready").status_code == 200


def test_a_workers_status_key_holding_another_type_leaves_the_others_ready(client, redis_env):
    heartbeat(redis_env, "w1", ready=True)
    heartbeat(redis_env, "w2", ready=True)
    redis_env.delete(protocol.worker_key("w2"))
    redis_env.set(protocol.worker_key("w2"), "a hand edit")
    response = client.get("/ready")
    assert response.status_code == 200 and response.get_json()["workers_ready"] == 1
    assert sorted(w["ready"] for w in response.get_json()["workers"]) == [False, True]  # listed, not ready
    assert client.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("path", ["/ready", "/ready/details", "/ready/accept", "/v2/health/ready"])
def test_a_job_stream_holding_another_type_is_moved_aside_by_every_readiness_route(client, redis_env, path):
    """With the workers scaled to zero and the replicas out of service while not ready, only the probe can fix it."""
    heartbeat(redis_env, "w1", ready=True)
    redis_env.set(protocol.JOB_STREAM, "a hand edit")  # every XADD would fail
    assert client.get(path).status_code == 200
    assert redis_env.get(protocol.set_aside_key(protocol.JOB_STREAM)) == b"a hand edit"
    assert not redis_env.exists(protocol.JOB_STREAM)  # the next XADD creates the stream


def test_a_job_stream_redis_will_not_move_makes_every_readiness_route_a_503_with_the_reason(
    client, redis_env, redis_server, caplog
):
    heartbeat(redis_env, "w1", ready=True)
    redis_env.set(protocol.JOB_STREAM, "a hand edit")

    def refusals_logged() -> int:
        return sum("could not be moved aside" in r.getMessage() for r in caplog.records)

    with redis_server.denied("rename"):
        for path in ("/ready", "/ready/details", "/ready/accept", "/v2/health/ready"):
            response = client.get(path)
            assert response.status_code == 503, path
            error = response.get_json()["error"]
            assert error == "ml:jobs holds a string, not the job stream: no request can be queued"
        assert refusals_logged() == 1  # once for the fault, not once per probe
    redis_env.delete(protocol.JOB_STREAM)  # fixed by hand: the next XADD creates the stream
    assert [client.get(p).status_code for p in ("/ready", "/ready/accept", "/v2/health/ready")] == [200, 200, 200]
    redis_env.set(protocol.JOB_STREAM, "a hand edit")
    with redis_server.denied("rename"):
        assert client.get("/ready").status_code == 503
    assert refusals_logged() == 2  # a new fault is logged again
    redis_env.delete(protocol.JOB_STREAM)
    assert client.get("/ready").status_code == 200  # fixed: ready again (the count of 2 showed it forgot the first)


def test_a_heartbeat_set_holding_another_type_is_a_503_that_does_not_say_redis_is_unreachable(client, redis_env):
    redis_env.set(protocol.HEARTBEATS_KEY, "a hand edit")
    response = client.get("/ready")
    assert response.status_code == 503 and response.get_json()["redis"] is True
    assert response.get_json()["error"] == "redis answered an error (the API's log names it)"


def test_metrics_without_redis_still_answers(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    # One charset parameter: Go's mime.ParseMediaType, which Prometheus 3 reads it with, refuses a repeated one.
    assert response.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    fams = families(response.get_data(as_text=True))
    assert value(fams, "ml_redis_up") == 0


def test_metrics_whole_service(client, redis_env, redis_server, photo):
    heartbeat(redis_env, "w1", metrics=WORKER_METRICS % 3, model_version="7")
    heartbeat(redis_env, "w2", metrics=WORKER_METRICS % 4)
    heartbeat(redis_env, "gone", metrics=WORKER_METRICS % 100, age_s=60)
    heartbeat(redis_env, "garbled", metrics="this is { not prometheus")
    with FakeWorker(redis_server.port, ok_result):
        ok = client.post(
            "/predict", data={"file": (io.BytesIO(photo()), "cat.jpg")}, content_type="multipart/form-data"
        )
    assert ok.status_code == 200
    redis_env.xadd(protocol.JOB_STREAM, {"id": "waiting"})
    redis_env.xadd(protocol.version_stream("7"), {"id": "named the version w1 serves"})
    redis_env.xadd(protocol.version_stream("8"), {"id": "named a version nobody serves"})
    client.post("/predict", json={})  # one 400
    text = client.get("/metrics").get_data(as_text=True)
    fams = families(text)  # parses: the exposition is valid
    assert value(fams, "ml_redis_up") == 1
    assert value(fams, "ml_queue_depth") == 2
    assert value(fams, "ml_workers_live") == 3 and value(fams, "ml_workers_ready") == 3
    assert value(fams, "api_requests", endpoint="/predict", status="200") >= 1
    assert value(fams, "api_requests", endpoint="/predict", status="400") >= 1
    assert value(fams, "api_errors", kind="bad_request") >= 1
    assert fams["api_request_latency_seconds"].type == "histogram"
    latency = [
        s
        for s in fams["api_request_latency_seconds"].samples
        if s.name.endswith("_count") and s.labels["endpoint"] == "/predict"
    ]
    assert latency and latency[0].value >= 2
    assert value(fams, "api_job_inference_seconds") >= 0 and fams["api_job_queued_seconds"].type == "histogram"
    # worker families merged into one, with a worker label; stale and garbled workers left out
    assert value(fams, "worker_jobs", worker="w1") == 3 and value(fams, "worker_jobs", worker="w2") == 4
    assert {s.labels["worker"] for s in fams["worker_jobs"].samples} == {"w1", "w2"}
    assert value(fams, "worker_batch_size", worker="w2") > 0
    assert text.count("# TYPE worker_jobs_total counter") == 1
    assert all(s.value != 99 for s in fams["api_requests"].samples)  # a worker cannot overwrite API families
    assert text.count("# TYPE api_requests_total counter") == 1


def test_a_stream_key_holding_another_type_is_counted_empty_not_redis_down(client, redis_env):
    heartbeat(redis_env, "w1", model_version="7")
    redis_env.xadd(protocol.JOB_STREAM, {"id": "waiting"})
    redis_env.set(protocol.version_stream("7"), "a hand edit")
    redis_env.hset(protocol.DEADLETTER_STREAM, "not", "a stream")
    fams = families(client.get("/metrics").get_data(as_text=True))
    assert value(fams, "ml_redis_up") == 1 and value(fams, "ml_workers_live") == 1
    assert value(fams, "ml_queue_depth") == 1 and value(fams, "ml_deadletter_depth") == 0


def test_security_headers_and_no_debug(app, client):
    assert app.debug is False
    response = client.get("/")
    assert "script-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_from_app_import_app_works():
    from app import app

    assert {r.rule for r in app.url_map.iter_rules()} >= {
        "/",
        "/predict",
        "/feedback",
        "/display/<filename>",
        "/health",
        "/ready",
        "/metrics",
    }
