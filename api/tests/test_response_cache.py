"""Response cache, API side, against a real redis-server: hit, miss, model change, rollout, off."""

import json
import time

import pytest

from resnet_common import protocol
import images
import metrics
import middleware
import response_cache
from errors import PredictionTimeout
from fakeworker import FakeWorker, ok_result

MODEL_A, MODEL_B = "a" * 64, "b" * 64
CACHED = {
    "id": "x",
    "ok": True,
    "prediction": "from_cache",
    "score": 0.5,
    "top_k": [["from_cache", 0.5], ["b", 0.3], ["c", 0.1], ["d", 0.05], ["e", 0.01]],
    "error": None,
    "message": "",
    "worker": "w",
    "batch_size": 1,
    "queued_ms": 1.0,
    "inference_ms": 30.0,
}


def live_worker(r, name: str, model_sha256: str | None) -> None:
    """A heartbeat as a worker writes it (docs/queue-protocol.md)."""
    r.zadd(protocol.HEARTBEATS_KEY, {name: time.time()})
    fields = {"ready": "1", "model": "ResNet50"} | ({"model_sha256": model_sha256} if model_sha256 else {})
    r.hset(protocol.worker_key(name), mapping=fields)


def cache_key(image_sha256: str, model_sha256: str, preprocess: str, top_k: int, explain: bool = False) -> str:
    """The Redis key a worker stores this request's answer under (its model hash + the job's request digest)."""
    return protocol.cache_key(model_sha256, response_cache.request_digest(image_sha256, preprocess, top_k, explain))


def cache(r, upload: images.Upload, model_sha256: str, top_k: int = 5) -> str:
    key = cache_key(upload.sha256, model_sha256, upload.mode, top_k)
    r.set(key, json.dumps(CACHED), ex=60)
    return key


def count(result: str) -> float:
    return metrics.CACHE.labels(result=result)._value.get()


@pytest.fixture
def upload(photo):
    return images.decode(photo("coffee.jpg"), "abc.jpg")


@pytest.fixture
def short(monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.3")


def test_key_covers_every_input():
    base = dict(image_sha256="1" * 64, model_sha256=MODEL_A, preprocess="keras", top_k=5)
    keys = {
        cache_key(**base),
        cache_key(**base | {"image_sha256": "2" * 64}),
        cache_key(**base | {"model_sha256": MODEL_B}),
        cache_key(**base | {"preprocess": "fast"}),
        cache_key(**base | {"top_k": 3}),
        cache_key(**base, explain=True),
    }
    assert len(keys) == 6 and all(k.startswith(protocol.CACHE_KEY_PREFIX + MODEL_A) or MODEL_B in k for k in keys)
    assert cache_key(**base) == cache_key(**base, explain=False)


def test_hit_is_answered_without_a_worker(redis_env, upload, short):
    live_worker(redis_env, "w-0", MODEL_A)
    cache(redis_env, upload, MODEL_A)
    hits = count("hit")
    result = middleware.model_predict(upload)
    assert (result.prediction, result.score) == ("from_cache", 0.5) and result.top_k[1] == ("b", 0.3)
    assert count("hit") == hits + 1
    assert redis_env.xlen(protocol.JOB_STREAM) == 0  # nothing was queued


def test_miss_goes_to_the_worker_and_carries_the_digest(redis_env, redis_server, upload):
    live_worker(redis_env, "w-0", MODEL_A)
    misses = count("miss")
    with FakeWorker(redis_server.port, ok_result) as worker:
        assert middleware.model_predict(upload, top_k=3)[0] == "tabby"
    assert count("miss") == misses + 1
    digest = worker.jobs[0]["cache"].decode()
    assert digest == response_cache.request_digest(upload.sha256, "keras", 3)


@pytest.mark.parametrize("broken", ["heartbeats", "worker status", "entry"])
def test_a_lookup_that_fails_is_a_miss_and_the_worker_answers(redis_env, redis_server, upload, broken):
    """Each key the lookup script reads holding another type of value (a hand edit) fails the script."""
    live_worker(redis_env, "w-0", MODEL_A)
    if broken == "heartbeats":
        redis_env.delete(protocol.HEARTBEATS_KEY)
        redis_env.set(protocol.HEARTBEATS_KEY, "x")
    elif broken == "worker status":
        live_worker(redis_env, "w-1", MODEL_A)  # a ready one: with none, the request is a 503 before any lookup
        redis_env.delete(protocol.worker_key("w-0"))
        redis_env.set(protocol.worker_key("w-0"), "x")
    else:
        redis_env.rpush(cache_key(upload.sha256, MODEL_A, upload.mode, 5), "x")
    unreadable = count("unreadable")
    with FakeWorker(redis_server.port, ok_result):
        assert middleware.model_predict(upload, top_k=5)[0] == "tabby"  # answered by the worker, not a 503
    assert count("unreadable") == unreadable + 1


def test_other_top_k_or_other_bytes_miss(redis_env, upload, photo, short):
    live_worker(redis_env, "w-0", MODEL_A)
    cache(redis_env, upload, MODEL_A, top_k=5)
    with pytest.raises(PredictionTimeout):
        middleware.model_predict(upload, top_k=3)
    with pytest.raises(PredictionTimeout):
        middleware.model_predict(images.decode(photo("cat.jpg"), "cat.jpg"))


def test_a_new_model_never_serves_an_old_answer(redis_env, upload, short):
    cache(redis_env, upload, MODEL_A)
    live_worker(redis_env, "w-0", MODEL_B)  # the fleet now serves model B
    with pytest.raises(PredictionTimeout):
        middleware.model_predict(upload)


@pytest.mark.parametrize("fleet", ["rollout", "no worker", "worker without hash"])
def test_no_single_known_model_means_no_lookup(redis_env, upload, short, fleet, monkeypatch):
    monkeypatch.setenv("SCALE_FROM_ZERO", "1")  # with no worker, the request waits in the queue
    cache(redis_env, upload, MODEL_A)
    if fleet == "rollout":
        live_worker(redis_env, "w-0", MODEL_A)
        live_worker(redis_env, "w-1", MODEL_B)
    elif fleet == "worker without hash":
        live_worker(redis_env, "w-0", None)
    skipped = count("no_model")
    with pytest.raises(PredictionTimeout):
        middleware.model_predict(upload)
    assert count("no_model") == skipped + 1


def test_off_switch(redis_env, redis_server, upload, monkeypatch):
    monkeypatch.setenv("RESPONSE_CACHE", "0")
    live_worker(redis_env, "w-0", MODEL_A)
    cache(redis_env, upload, MODEL_A)
    looked_up = count("hit") + count("miss") + count("no_model")
    with FakeWorker(redis_server.port, ok_result) as worker:
        assert middleware.model_predict(upload)[0] == "tabby"  # the worker's answer, not the cached one
    assert worker.jobs[0]["cache"] == b""  # and the worker is not asked to store it
    assert count("hit") + count("miss") + count("no_model") == looked_up
