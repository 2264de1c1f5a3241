"""/predict through the real queue path (real redis-server + fake worker peer), status codes end to end."""

import io
import time

from resnet_common import protocol
from fakeworker import FakeWorker, error_result, heartbeat, ok_result
from testkit import refused_port

THREE_KEYS = {"success": False, "prediction": None, "score": None}


def post(client, photo, url="/predict"):
    return client.post(url, data={"file": (io.BytesIO(photo()), "cat.jpg")}, content_type="multipart/form-data")


def test_predict_200(client, redis_env, redis_server, photo):
    with FakeWorker(redis_server.port, ok_result):
        response = post(client, photo, "/predict?top_k=2")
    assert response.status_code == 200
    assert response.get_json() == {
        "success": True,
        "prediction": "tabby",
        "score": 0.7,
        "top_k": [["tabby", 0.7], ["tiger_cat", 0.2]],
    }


def test_page_shows_top_5(client, redis_env, redis_server, photo):
    with FakeWorker(redis_server.port, ok_result):
        page = post(client, photo, "/").get_data(as_text=True)
    assert page.count("<meter") == 5 and "cougar" in page


def test_predict_503_at_once_when_no_worker_is_ready(client, redis_env, photo):
    heartbeat(redis_env, "loading", ready=False)  # alive, its model not loaded yet
    start = time.perf_counter()
    response = post(client, photo)
    assert response.status_code == 503 and time.perf_counter() - start < 1.0
    assert response.headers["Retry-After"] == "1" and "no worker is ready" in response.get_json()["error"]
    assert not redis_env.exists(protocol.JOB_STREAM) or redis_env.xlen(protocol.JOB_STREAM) == 0  # nothing queued


def test_predict_504_when_no_worker_comes_to_a_pool_scaling_from_zero(client, redis_env, photo, monkeypatch):
    monkeypatch.setenv("SCALE_FROM_ZERO", "1")
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.3")
    start = time.perf_counter()
    response = post(client, photo)
    assert response.status_code == 504 and time.perf_counter() - start < 1.0
    assert {k: response.get_json()[k] for k in THREE_KEYS} == THREE_KEYS


def test_predict_503_retry_after_when_full(client, redis_env, photo, monkeypatch):
    heartbeat(redis_env, "w1")
    monkeypatch.setenv("MAX_QUEUE_DEPTH", "1")
    redis_env.xadd(protocol.JOB_STREAM, {"id": "busy"})
    response = post(client, photo)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "queue" in response.get_json()["error"]


def test_predict_503_when_redis_down(client, photo, monkeypatch):
    with refused_port() as port:
        monkeypatch.setenv("REDIS_PORT", str(port))
        start = time.perf_counter()
        response = post(client, photo)
    assert response.status_code == 503 and time.perf_counter() - start < 1.0
    assert "Retry-After" not in response.headers


def test_predict_worker_errors(client, redis_env, redis_server, photo):
    with FakeWorker(redis_server.port, error_result("invalid_image", "cannot identify image")):
        bad = post(client, photo)
    with FakeWorker(redis_server.port, error_result("inference_failed", "onnx exploded")):
        failed = post(client, photo)
    assert bad.status_code == 400 and bad.get_json() == THREE_KEYS and "cannot identify" in bad.headers["X-Error"]
    assert failed.status_code == 503 and "onnx exploded" in failed.get_json()["error"]
