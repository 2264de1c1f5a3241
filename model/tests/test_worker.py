"""worker.Worker: one step() = read, batch, classify, answer; driven against a real redis-server (tiny model)."""

from __future__ import annotations

import threading
import time

from resnet_common import protocol
from classifier import Classifier
from constants import Outcome
from helpers import enqueue, pending, photo, result
from job_queue import JobQueue, connect
from metrics import WorkerMetrics
from testkit import free_port
from worker import Worker

RESULT_KEYS = {
    "id",
    "ok",
    "prediction",
    "score",
    "top_k",
    "error",
    "message",
    "worker",
    "model_version",
    "batch_size",
    "queued_ms",
    "inference_ms",
}


def test_waiting_jobs_run_as_one_batch(r, make_worker):
    worker = make_worker()
    ids = [enqueue(r, photo(), top_k=k) for k in (1, 2, 3, 4, 5)]
    assert worker.step(block=False) == 5
    results = [result(r, i, timeout=1) for i in ids]
    assert [res["batch_size"] for res in results] == [5] * 5
    assert [len(res["top_k"]) for res in results] == [1, 2, 3, 4, 5]
    assert worker.metrics.registry.get_sample_value("ml_worker_batch_size_count", {"worker": "w-test"}) == 1
    assert r.xlen(protocol.JOB_STREAM) == 0 and pending(r) == 0


def test_batch_size_is_capped(r, make_worker):
    worker = make_worker(BATCH_SIZE=4)
    ids = [enqueue(r, photo()) for _ in range(6)]
    assert worker.step(block=False) == 4
    assert worker.step(block=False) == 2
    assert [result(r, i, timeout=1)["batch_size"] for i in ids] == [4, 4, 4, 4, 2, 2]


def test_result_format_follows_the_protocol(r, make_worker):
    worker = make_worker(RESULT_TTL_S=30)
    job_id = enqueue(r, photo("coffee.jpg"), top_k=3)
    worker.step(block=False)
    assert 0 < r.ttl(protocol.result_key(job_id)) <= 30
    res = result(r, job_id, timeout=1)
    assert set(res) == RESULT_KEYS
    assert res["id"] == job_id and res["ok"] is True and res["error"] is None and res["message"] == ""
    assert res["prediction"] == res["top_k"][0][0] and res["score"] == res["top_k"][0][1]
    assert all(isinstance(label, str) and p == round(p, 4) for label, p in res["top_k"])
    assert res["worker"] == "w-test" and res["queued_ms"] >= 0 and res["inference_ms"] > 0


def test_expired_jobs_are_dropped_without_computing(r, make_worker):
    worker = make_worker()
    stale = enqueue(r, photo(), ttl_s=-1)
    fresh = enqueue(r, photo())
    worker.step(block=False)
    assert result(r, fresh, timeout=1)["batch_size"] == 1  # the expired one was not in the batch
    assert not r.exists(protocol.result_key(stale))
    assert r.xlen(protocol.JOB_STREAM) == 0 and pending(r) == 0
    assert worker.metrics.count(Outcome.EXPIRED) == 1 and worker.metrics.count(Outcome.OK) == 1


def test_invalid_image_fails_alone(r, make_worker):
    worker = make_worker()
    good1, bad, good2 = enqueue(r, photo()), enqueue(r, b"%PDF-1.4 not an image"), enqueue(r, photo())
    worker.step(block=False)
    res = result(r, bad, timeout=1)
    assert (res["ok"], res["error"], res["prediction"], res["score"], res["top_k"]) == (
        False,
        "invalid_image",
        None,
        None,
        [],
    )
    assert "pixels" in res["message"]  # an undecodable upload reaches the queue only as an old-style `image` job
    assert [result(r, i, timeout=1)["batch_size"] for i in (good1, good2)] == [2, 2]
    assert r.xlen(protocol.JOB_STREAM) == 0


def test_batch_wait_keeps_topping_up_until_the_wait_ends(r, make_worker):
    worker = make_worker(BATCH_SIZE=4, BATCH_WAIT_MS=600)
    first = enqueue(r, photo())
    late: list[str] = []
    timers = [threading.Timer(delay, lambda: late.append(enqueue(r, photo()))) for delay in (0.1, 0.25)]
    for timer in timers:
        timer.start()
    started = time.monotonic()
    assert worker.step() == 3  # both late jobs joined the batch, one read each
    assert 0.5 < time.monotonic() - started < 1.5  # not full: it waited out BATCH_WAIT_MS, no longer
    for timer in timers:
        timer.join()
    assert {result(r, job, timeout=1)["batch_size"] for job in [first, *late]} == {3}


def test_batch_wait_stops_as_soon_as_the_batch_is_full(r, make_worker):
    worker = make_worker(BATCH_SIZE=2, BATCH_WAIT_MS=5000)
    first = enqueue(r, photo())
    timer = threading.Timer(0.2, lambda: enqueue(r, photo()))
    timer.start()
    started = time.monotonic()
    assert worker.step() == 2
    assert time.monotonic() - started < 2.0
    timer.join()
    assert result(r, first, timeout=1)["batch_size"] == 2


def test_no_batch_wait_by_default(r, make_worker):
    worker = make_worker(BATCH_SIZE=4)
    first = enqueue(r, photo())
    assert worker.step() == 1
    assert result(r, first, timeout=1)["batch_size"] == 1


def test_lenient_fields(r, make_worker):
    worker = make_worker()
    big = enqueue(r, photo(), top_k=50)
    junk = enqueue(r, photo(), top_k="lots")
    no_deadline = enqueue(r, photo(), deadline="")
    r.xadd(protocol.JOB_STREAM, {"image": photo()})  # no id: cannot be answered, must not block the stream
    assert worker.step(block=False) == 3
    assert len(result(r, big, timeout=1)["top_k"]) == 10
    assert len(result(r, junk, timeout=1)["top_k"]) == protocol.TOP_K_DEFAULT
    assert result(r, no_deadline, timeout=1)["ok"] is True
    assert r.xlen(protocol.JOB_STREAM) == 0 and pending(r) == 0


def test_stop_during_batch_wait_ends_the_top_up(r, make_worker):
    """SIGTERM while a partial batch waits for company: the jobs in hand are answered at once, no new ones."""
    worker = make_worker(BATCH_SIZE=4, BATCH_WAIT_MS=5000)
    stop = threading.Event()
    first = enqueue(r, photo())
    timers = [threading.Timer(0.2, stop.set), threading.Timer(0.3, lambda: enqueue(r, photo()))]
    for timer in timers:
        timer.start()
    started = time.monotonic()
    assert worker.step(stop) == 1
    assert time.monotonic() - started < 1.0
    for timer in timers:
        timer.join()
    assert result(r, first, timeout=1)["batch_size"] == 1
    assert r.xlen(protocol.JOB_STREAM) == 1 and pending(r) == 0  # the late job stays for another worker


def test_stop_answers_the_jobs_read_beyond_the_last_batch(r, make_worker):
    """XREADGROUP's COUNT applies per stream, so a worker can hold more jobs than one batch. On SIGTERM it answers
    them before leaving instead of leaving them pending until another worker reclaims them after CLAIM_IDLE_MS."""
    worker = make_worker(BATCH_SIZE=2, CLAIM_IDLE_MS=600_000)
    served = protocol.version_stream(worker.queue.version)
    jobs = [enqueue(r, photo(), stream=served) for _ in range(2)] + [enqueue(r, photo()) for _ in range(2)]
    assert worker.step(block=False) == 2 and worker.queue.carried == 2
    stop = threading.Event()
    stop.set()
    worker.run(stop)
    assert all(result(r, job_id, timeout=1)["ok"] for job_id in jobs)
    assert worker.queue.carried == 0 and pending(r) == 0 and r.xlen(protocol.JOB_STREAM) == 0


def test_run_survives_redis_being_unreachable(make_cfg, labels_file):
    cfg = make_cfg(REDIS_PORT=free_port())
    worker = Worker(cfg, Classifier(cfg), JobQueue(connect(cfg, 100), cfg, "w-down"), WorkerMetrics("w-down"))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert (
        worker.metrics.registry.get_sample_value("ml_worker_errors_total", {"worker": "w-down", "kind": "redis"}) >= 2
    )
