"""The queue path against a real redis-server, with a fake worker thread as the peer."""

import time

import pytest

from resnet_common import protocol
import images
import job_client
import middleware
from errors import BrokerUnavailable, InvalidImage, NoWorker, PredictionFailed, PredictionTimeout, QueueFull
from fakeworker import FakeWorker, error_result, heartbeat, ok_result
from testkit import refused_port


@pytest.fixture
def stored(isolated_dirs, photo):
    """A real photo decoded as the view decodes it."""
    return images.decode(photo("coffee.jpg"), "abc.jpg")


def test_round_trip_carries_bytes_and_protocol_fields(redis_env, redis_server, stored, photo):
    with FakeWorker(redis_server.port, ok_result) as worker:
        before = time.time()
        result = middleware.model_predict(stored, top_k=3)
    assert result[:2] == ("tabby", 0.7) and result.prediction == "tabby" and result.score == 0.7
    assert result.top_k == (("tabby", 0.7), ("tiger_cat", 0.2), ("lynx", 0.05))
    job = worker.jobs[0]
    from resnet_common import preprocess

    assert job["pixels"] == preprocess.decode_pixels(photo("coffee.jpg")).tobytes()  # decoded once, here
    assert len(job["pixels"]) == 224 * 224 * 3 and "image" not in job  # 147 KiB, whatever the upload's size
    assert job["filename"] == b"abc.jpg" and job["top_k"] == b"3" and job["preprocess"] == b"keras"
    assert len(job["id"]) == 32 and before <= float(job["enqueued"]) <= float(job["deadline"]) - 29
    assert redis_env.xlen(protocol.JOB_STREAM) == 0  # answered jobs leave the stream
    assert redis_env.keys(protocol.RESULT_KEY_PREFIX + "*") == []  # BLPOP consumed the result


def test_consumer_group_exists_before_any_worker(redis_env, stored, monkeypatch):
    """Jobs added before a worker starts (a pool scaled to zero) must not be skipped: the API creates the group at
    id 0."""
    monkeypatch.setenv("SCALE_FROM_ZERO", "1")
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.2")
    with pytest.raises(PredictionTimeout):
        middleware.model_predict(stored)
    groups = redis_env.xinfo_groups(protocol.JOB_STREAM)
    assert [g["name"] for g in groups] == [protocol.CONSUMER_GROUP.encode()]
    assert groups[0]["last-delivered-id"] == b"0-0"


def test_group_is_recreated_after_redis_lost_its_data(redis_env, redis_server, stored, monkeypatch):
    with FakeWorker(redis_server.port, ok_result):
        assert middleware.model_predict(stored)[0] == "tabby"
    redis_env.flushall()  # like a restart without persistence
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.2")
    with pytest.raises(PredictionTimeout):
        middleware.model_predict(stored)
    assert redis_env.xinfo_groups(protocol.JOB_STREAM)[0]["last-delivered-id"] == b"0-0"


def test_timeout_is_quick_and_forgets_the_job(redis_env, stored, monkeypatch):
    heartbeat(redis_env, "w-silent")  # ready, but it never reads
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.5")
    start = time.perf_counter()
    with pytest.raises(PredictionTimeout):
        middleware.model_predict(stored)
    elapsed = time.perf_counter() - start
    assert 0.45 <= elapsed < 1.0
    assert redis_env.xlen(protocol.JOB_STREAM) == 0  # expired job no longer counts against the depth


def test_silent_worker_still_bounded_by_deadline(redis_env, redis_server, stored, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.3")
    with FakeWorker(redis_server.port, lambda fields: None) as worker:
        start = time.perf_counter()
        with pytest.raises(PredictionTimeout):
            middleware.model_predict(stored)
        assert time.perf_counter() - start < 0.8
    assert len(worker.jobs) == 1


def test_queue_full(redis_env, stored, monkeypatch):
    heartbeat(redis_env, "w-busy")
    monkeypatch.setenv("MAX_QUEUE_DEPTH", "2")
    for _ in range(2):
        redis_env.xadd(protocol.JOB_STREAM, {"id": "x"})
    start = time.perf_counter()
    with pytest.raises(QueueFull):
        middleware.model_predict(stored)
    assert time.perf_counter() - start < 0.2
    assert redis_env.xlen(protocol.JOB_STREAM) == 2  # nothing added


def test_redis_down_is_broker_unavailable_quickly(stored, monkeypatch):
    with refused_port() as port:
        monkeypatch.setenv("REDIS_PORT", str(port))
        start = time.perf_counter()
        with pytest.raises(BrokerUnavailable):
            middleware.model_predict(stored)
    assert time.perf_counter() - start < 1.0


def test_redis_restart_is_survived(redis_env, redis_server, stored, monkeypatch):
    """Pooled sockets killed by the server do not poison the next request."""
    with FakeWorker(redis_server.port, ok_result):
        assert middleware.model_predict(stored)[0] == "tabby"
        redis_env.client_kill_filter(_type="normal", skipme=True)
        assert middleware.model_predict(stored)[0] == "tabby"


def test_password_from_settings(redis_env, redis_server, stored, monkeypatch):
    redis_env.config_set("requirepass", "s3cret")
    try:
        monkeypatch.setenv("REDIS_PASSWORD", "wrong")
        with pytest.raises(BrokerUnavailable):
            middleware.model_predict(stored)
        monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
        with pytest.raises(NoWorker):  # authenticated: got as far as reading the workers' heartbeats
            middleware.model_predict(stored)
    finally:
        redis_env.execute_command("AUTH", "s3cret")
        redis_env.config_set("requirepass", "")


@pytest.mark.parametrize(
    "code, exc",
    [("invalid_image", InvalidImage), ("inference_failed", PredictionFailed), ("dead_letter", PredictionFailed)],
)
def test_worker_errors_are_typed(redis_env, redis_server, stored, code, exc):
    with FakeWorker(redis_server.port, error_result(code, "it broke")):
        with pytest.raises(exc, match="it broke"):
            middleware.model_predict(stored)


@pytest.mark.parametrize("raw", [b"not json", b"[" * 100_000])  # the second nested deeper than the recursion limit
def test_an_unreadable_worker_answer_is_a_prediction_failure(redis_env, redis_server, stored, raw):
    def answer(fields: dict) -> None:
        redis_env.lpush(protocol.result_key(fields["id"].decode()), raw)  # in the worker's place

    with FakeWorker(redis_server.port, answer):
        with pytest.raises(PredictionFailed, match="unreadable answer from the worker"):
            middleware.model_predict(stored)


def test_client_is_shared_and_follows_settings(redis_env, redis_server, monkeypatch):
    pool = job_client.client(False).connection_pool
    assert job_client.client(False) is job_client.client(False)  # one client per settings, not one per call
    assert pool.connection_kwargs["port"] == redis_server.port
    assert pool.connection_kwargs["socket_timeout"] == 2.0
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT_S", "0.5")
    assert job_client.client(False).connection_pool.connection_kwargs["socket_connect_timeout"] == 0.5
    assert job_client.client(True).connection_pool.connection_kwargs["socket_timeout"] == 30.5
