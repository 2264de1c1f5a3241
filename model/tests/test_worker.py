"""The worker loop against a real redis-server, driven one step at a time (tiny model: fast)."""
from __future__ import annotations

import threading
import time

import pytest

import constants as C
from classifier import Classifier
from conftest import enqueue, photo, result
from constants import Outcome
from job_queue import JobQueue, connect
from metrics import WorkerMetrics
from worker import Worker

RESULT_KEYS = {"id", "ok", "prediction", "score", "top_k", "error", "message", "worker", "batch_size",
               "queued_ms", "inference_ms"}


@pytest.fixture
def make_worker(make_cfg):
    workers: list[Worker] = []

    def make(name: str = "w-test", **overrides) -> Worker:
        cfg = make_cfg(**overrides)
        clf = Classifier(cfg, threads=1)
        clf.initialize()
        workers.append(Worker(cfg, clf, JobQueue(connect(cfg, 100), cfg, name), WorkerMetrics(name)))
        return workers[-1]
    yield make
    for worker in workers:
        worker.close()


def pending(r) -> int:
    return r.xpending(C.JOB_STREAM, C.CONSUMER_GROUP)["pending"]


def test_waiting_jobs_run_as_one_batch(r, make_worker):
    worker = make_worker()
    ids = [enqueue(r, photo(), top_k=k) for k in (1, 2, 3, 4, 5)]
    assert worker.step(block=False) == 5
    results = [result(r, i, timeout=1) for i in ids]
    assert [res["batch_size"] for res in results] == [5] * 5
    assert [len(res["top_k"]) for res in results] == [1, 2, 3, 4, 5]
    assert worker.metrics.registry.get_sample_value(
        "ml_worker_batch_size_count", {"worker": "w-test"}) == 1
    assert r.xlen(C.JOB_STREAM) == 0 and pending(r) == 0


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
    assert 0 < r.ttl(C.result_key(job_id)) <= 30
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
    assert not r.exists(C.result_key(stale))
    assert r.xlen(C.JOB_STREAM) == 0 and pending(r) == 0
    assert worker.metrics.count(Outcome.EXPIRED) == 1 and worker.metrics.count(Outcome.OK) == 1


def test_invalid_image_fails_alone(r, make_worker):
    worker = make_worker()
    good1, bad, good2 = enqueue(r, photo()), enqueue(r, b"%PDF-1.4 not an image"), enqueue(r, photo())
    worker.step(block=False)
    res = result(r, bad, timeout=1)
    assert (res["ok"], res["error"], res["prediction"], res["score"], res["top_k"]) == (
        False, "invalid_image", None, None, [])
    assert "not a readable image" in res["message"]
    assert [result(r, i, timeout=1)["batch_size"] for i in (good1, good2)] == [2, 2]
    assert r.xlen(C.JOB_STREAM) == 0


def _deliver(r, n: int) -> None:
    """Hand the newest job out n times to consumers that never answer (as crashing workers would)."""
    r.xgroup_create(C.JOB_STREAM, C.CONSUMER_GROUP, id="0", mkstream=True)
    entry = r.xreadgroup(C.CONSUMER_GROUP, "ghost-0", {C.JOB_STREAM: ">"}, count=1)[0][1][0][0]
    for i in range(1, n):
        r.xclaim(C.JOB_STREAM, C.CONSUMER_GROUP, f"ghost-{i}", 0, [entry])


def test_job_left_by_a_dead_consumer_is_reclaimed(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=100)
    job_id = enqueue(r, photo())
    _deliver(r, 1)
    assert worker.step(block=False) == 0  # not idle long enough yet
    time.sleep(0.15)
    worker._next_claim = 0
    assert worker.step(block=False) == 1
    assert result(r, job_id, timeout=1)["ok"] is True
    assert worker.metrics.registry.get_sample_value("ml_worker_reclaimed_total", {"worker": "w-test"}) == 1
    assert pending(r) == 0 and r.xlen(C.JOB_STREAM) == 0


def test_job_at_the_delivery_limit_is_still_served(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=10, MAX_DELIVERIES=3)
    job_id = enqueue(r, photo())
    _deliver(r, 2)  # the worker's claim is delivery 3
    time.sleep(0.05)
    worker.step(block=False)
    assert result(r, job_id, timeout=1)["ok"] is True
    assert r.xlen(C.DEADLETTER_STREAM) == 0


def test_jobs_that_failed_twice_are_run_one_at_a_time(r, make_worker):
    """A crash-inducing job hides among neighbours that crashed with it: each suspect runs alone."""
    worker = make_worker(CLAIM_IDLE_MS=10, MAX_DELIVERIES=3)
    ids = [enqueue(r, photo()) for _ in range(3)]
    r.xgroup_create(C.JOB_STREAM, C.CONSUMER_GROUP, id="0", mkstream=True)
    entries = [e for e, _ in r.xreadgroup(C.CONSUMER_GROUP, "ghost-0", {C.JOB_STREAM: ">"}, count=3)[0][1]]
    r.xclaim(C.JOB_STREAM, C.CONSUMER_GROUP, "ghost-1", 0, entries)  # two deliveries each
    newcomer = enqueue(r, photo())
    time.sleep(0.05)
    assert [worker.step(block=False) for _ in range(3)] == [1, 1, 1]
    assert [result(r, i, timeout=1)["batch_size"] for i in ids] == [1, 1, 1]
    assert not r.exists(C.result_key(newcomer))  # never batched with a suspect
    assert worker.step(block=False) == 1 and result(r, newcomer, timeout=1)["ok"] is True


def test_a_killed_workers_batch_is_reclaimed_as_a_batch(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=10)
    ids = [enqueue(r, photo()) for _ in range(3)]
    r.xgroup_create(C.JOB_STREAM, C.CONSUMER_GROUP, id="0", mkstream=True)
    r.xreadgroup(C.CONSUMER_GROUP, "killed", {C.JOB_STREAM: ">"}, count=3)
    newcomer = enqueue(r, photo())
    time.sleep(0.05)
    assert worker.step(block=False) == 4
    assert [result(r, i, timeout=1)["batch_size"] for i in ids + [newcomer]] == [4] * 4


def test_poison_job_is_dead_lettered_after_max_deliveries(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=10, MAX_DELIVERIES=3)
    job_id = enqueue(r, photo())
    _deliver(r, 3)  # three workers died on it; the worker's claim is delivery 4
    time.sleep(0.05)
    worker.step(block=False)
    res = result(r, job_id, timeout=1)
    assert (res["ok"], res["error"], res["prediction"]) == (False, "dead_letter", None)
    [(_, fields)] = r.xrange(C.DEADLETTER_STREAM)
    assert fields[b"id"] == job_id.encode() and b"image" not in fields
    assert b"delivered 4 times" in fields[b"reason"]
    assert r.xlen(C.JOB_STREAM) == 0 and pending(r) == 0
    assert worker.metrics.count(Outcome.DEAD_LETTER) == 1
    assert worker.step(block=False) == 0  # nothing comes back


def test_lost_group_is_recreated_and_old_entries_served(r, make_worker):
    """Redis restarted without persistence: the API's XADD recreates the stream but not the group."""
    worker = make_worker()
    worker.step(block=False)
    r.flushall()
    job_id = enqueue(r, photo())
    assert worker.step(block=False) == 1
    assert result(r, job_id, timeout=1)["ok"] is True


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
    worker = make_worker(TOP_K=5)
    big = enqueue(r, photo(), top_k=50)
    junk = enqueue(r, photo(), top_k="lots")
    no_deadline = enqueue(r, photo(), deadline="")
    r.xadd(C.JOB_STREAM, {"image": photo()})  # no id: cannot be answered, must not block the stream
    assert worker.step(block=False) == 3
    assert len(result(r, big, timeout=1)["top_k"]) == 10
    assert len(result(r, junk, timeout=1)["top_k"]) == 5
    assert result(r, no_deadline, timeout=1)["ok"] is True
    assert r.xlen(C.JOB_STREAM) == 0 and pending(r) == 0


def test_only_dead_consumers_with_nothing_pending_are_pruned(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=1, HEARTBEAT_TTL_S=10)
    worker.step(block=False)
    enqueue(r, photo())
    r.xreadgroup(C.CONSUMER_GROUP, "dead-with-job", {C.JOB_STREAM: ">"}, count=1)
    for name in ("dead-idle", "alive-idle", "long-silent"):
        r.xgroup_createconsumer(C.JOB_STREAM, C.CONSUMER_GROUP, name)
    r.zadd(C.HEARTBEATS_KEY, {"alive-idle": time.time(), "long-silent": time.time() - 31})
    time.sleep(0.05)
    assert worker.queue.prune_consumers() == 2
    names = {c["name"] for c in r.xinfo_consumers(C.JOB_STREAM, C.CONSUMER_GROUP)}
    assert names == {b"dead-with-job", b"alive-idle"}


def test_run_survives_redis_being_unreachable(make_cfg, labels_file):
    from conftest import free_port

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
    assert worker.metrics.registry.get_sample_value(
        "ml_worker_errors_total", {"worker": "w-down", "kind": "redis"}) >= 2


# leases: a live worker's slow batch is never taken over ------------------------------------------------
def _pending_of(r) -> dict[str, tuple[str, int, int]]:
    """entry id → (consumer, idle ms, deliveries)."""
    return {p["message_id"].decode(): (p["consumer"].decode(), p["time_since_delivered"], p["times_delivered"])
            for p in r.xpending_range(C.JOB_STREAM, C.CONSUMER_GROUP, "-", "+", 100)}


def test_slow_batch_is_not_taken_over_by_another_worker(r, make_worker):
    """A batch that runs 4× CLAIM_IDLE_MS keeps its lease: the other worker claims nothing, one answer, 1 delivery."""
    slow, other = make_worker("w-slow", CLAIM_IDLE_MS=300), make_worker("w-other", CLAIM_IDLE_MS=300)
    predict = slow.classifier.predict_batch
    slow.classifier.predict_batch = lambda *a, **kw: (time.sleep(1.2), predict(*a, **kw))[1]
    slow.queue.ensure_group()
    ids = [enqueue(r, photo()) for _ in range(2)]
    thread = threading.Thread(target=slow.step, kwargs={"block": False})
    thread.start()
    while pending(r) < 2:  # the slow worker reads the fresh jobs first; then the other one only claims
        assert thread.is_alive()
        time.sleep(0.005)
    seen = []
    while thread.is_alive():
        other._next_claim = 0
        assert other.step(block=False) == 0
        seen += [v for v in _pending_of(r).values()]
        time.sleep(0.05)
    thread.join()
    assert seen and all(consumer == "w-slow" and deliveries == 1 and idle < 300 for consumer, idle, deliveries in seen)
    assert [r.llen(C.result_key(i)) for i in ids] == [1, 1]  # answered once, by the slow worker
    assert {result(r, i, timeout=1)["worker"] for i in ids} == {"w-slow"}
    assert pending(r) == 0 and slow.queue.held() == []


def test_a_dead_holders_jobs_are_reclaimed(r, make_worker):
    """While the holder refreshes, nobody claims its jobs; once it stops (dies), another worker does."""
    holder, other = make_worker("w-holder", CLAIM_IDLE_MS=300), make_worker("w-other", CLAIM_IDLE_MS=300)
    holder.queue.ensure_group()
    ids = [enqueue(r, photo()) for _ in range(2)]
    held = holder.queue.read(8, None)
    assert sorted(j.entry_id for j in held) == holder.queue.held()
    holder.lease.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert other.queue.claim_stale(8) == ([], False)
        time.sleep(0.05)
    assert {v[0] for v in _pending_of(r).values()} == {"w-holder"}
    assert {v[2] for v in _pending_of(r).values()} == {1}
    holder.lease.stop()  # the holder dies: no more refreshes
    started = time.monotonic()
    other._next_claim = 0
    while not other.step(block=False):
        assert time.monotonic() - started < 2.0
        other._next_claim = 0
        time.sleep(0.02)
    assert time.monotonic() - started >= 0.2  # only once the entries went idle for CLAIM_IDLE_MS
    assert {result(r, i, timeout=1)["worker"] for i in ids} == {"w-other"}
    assert other.metrics.registry.get_sample_value("ml_worker_reclaimed_total", {"worker": "w-other"}) == 2


def test_refresh_never_steals_back_a_claimed_job(r, make_worker):
    """A holder that stalled past CLAIM_IDLE_MS and lost its job to another worker lets it go."""
    holder = make_worker("w-holder", CLAIM_IDLE_MS=300)
    holder.queue.ensure_group()
    enqueue(r, photo())
    kept = enqueue(r, photo())
    first, second = holder.queue.read(2, None)
    r.xclaim(C.JOB_STREAM, C.CONSUMER_GROUP, "w-thief", 0, [first.entry_id])
    time.sleep(0.05)
    assert holder.queue.refresh_leases() == 1
    assert _pending_of(r)[first.entry_id][0] == "w-thief"
    consumer, idle, deliveries = _pending_of(r)[second.entry_id]
    assert (consumer, deliveries) == ("w-holder", 1) and idle < 50
    assert holder.queue.held() == [second.entry_id] and second.id == kept


def test_answered_jobs_are_no_longer_refreshed(r, make_worker):
    worker = make_worker()
    job_id = enqueue(r, photo())
    worker.step(block=False)
    assert worker.queue.held() == [] and worker.queue.refresh_leases() == 0
    assert result(r, job_id, timeout=1)["ok"] is True and pending(r) == 0


def test_a_failed_batch_is_released_for_reclaiming(r, make_worker):
    worker = make_worker()
    enqueue(r, photo())

    def boom(*_a, **_kw):
        raise RuntimeError("boom")
    worker.classifier.predict_batch = boom
    with pytest.raises(RuntimeError):
        worker.step(block=False)
    assert worker.queue.held() == [] and pending(r) == 1  # left for claim_stale, not refreshed forever


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
    assert r.xlen(C.JOB_STREAM) == 1 and pending(r) == 0  # the late job stays for another worker
