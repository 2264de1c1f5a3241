"""job_queue.JobQueue: reclaiming from dead consumers, delivery limits, dead letters, a lost group, pruning."""

from __future__ import annotations

import time

from resnet_common import protocol
from constants import Outcome
from helpers import deliver, enqueue, pending, photo, result


def test_job_left_by_a_dead_consumer_is_reclaimed(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=100)
    job_id = enqueue(r, photo())
    deliver(r, 1)
    assert worker.step(block=False) == 0  # not idle long enough yet
    time.sleep(0.15)
    worker._next_claim = 0
    assert worker.step(block=False) == 1
    assert result(r, job_id, timeout=1)["ok"] is True
    assert worker.metrics.registry.get_sample_value("ml_worker_reclaimed_total", {"worker": "w-test"}) == 1
    assert pending(r) == 0 and r.xlen(protocol.JOB_STREAM) == 0


def test_job_at_the_delivery_limit_is_still_served(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=10, MAX_DELIVERIES=3)
    job_id = enqueue(r, photo())
    deliver(r, 2)  # the worker's claim is delivery 3
    time.sleep(0.05)
    worker.step(block=False)
    assert result(r, job_id, timeout=1)["ok"] is True
    assert r.xlen(protocol.DEADLETTER_STREAM) == 0


def test_jobs_that_failed_twice_are_run_one_at_a_time(r, make_worker):
    """A crash-inducing job hides among neighbours that crashed with it: each suspect runs alone."""
    worker = make_worker(CLAIM_IDLE_MS=10, MAX_DELIVERIES=3)
    ids = [enqueue(r, photo()) for _ in range(3)]
    r.xgroup_create(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, id="0", mkstream=True)
    entries = [
        e for e, _ in r.xreadgroup(protocol.CONSUMER_GROUP, "ghost-0", {protocol.JOB_STREAM: ">"}, count=3)[0][1]
    ]
    r.xclaim(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, "ghost-1", 0, entries)  # two deliveries each
    newcomer = enqueue(r, photo())
    time.sleep(0.05)
    assert [worker.step(block=False) for _ in range(3)] == [1, 1, 1]
    assert [result(r, i, timeout=1)["batch_size"] for i in ids] == [1, 1, 1]
    assert not r.exists(protocol.result_key(newcomer))  # never batched with a suspect
    assert worker.step(block=False) == 1 and result(r, newcomer, timeout=1)["ok"] is True


def test_a_killed_workers_batch_is_reclaimed_as_a_batch(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=10)
    ids = [enqueue(r, photo()) for _ in range(3)]
    r.xgroup_create(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, id="0", mkstream=True)
    r.xreadgroup(protocol.CONSUMER_GROUP, "killed", {protocol.JOB_STREAM: ">"}, count=3)
    newcomer = enqueue(r, photo())
    time.sleep(0.05)
    assert worker.step(block=False) == 4
    assert [result(r, i, timeout=1)["batch_size"] for i in ids + [newcomer]] == [4] * 4


def test_poison_job_is_dead_lettered_after_max_deliveries(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=10, MAX_DELIVERIES=3)
    job_id = enqueue(r, photo())
    deliver(r, 3)  # three workers died on it; the worker's claim is delivery 4
    time.sleep(0.05)
    worker.step(block=False)
    res = result(r, job_id, timeout=1)
    assert (res["ok"], res["error"], res["prediction"]) == (False, "dead_letter", None)
    [(_, fields)] = r.xrange(protocol.DEADLETTER_STREAM)
    assert fields[b"id"] == job_id.encode() and b"image" not in fields
    assert b"delivered 4 times" in fields[b"reason"]
    assert r.xlen(protocol.JOB_STREAM) == 0 and pending(r) == 0
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


def test_only_dead_consumers_with_nothing_pending_are_pruned(r, make_worker):
    worker = make_worker(CLAIM_IDLE_MS=1, HEARTBEAT_TTL_S=10)
    worker.step(block=False)
    enqueue(r, photo())
    r.xreadgroup(protocol.CONSUMER_GROUP, "dead-with-job", {protocol.JOB_STREAM: ">"}, count=1)
    for name in ("dead-idle", "alive-idle", "long-silent"):
        r.xgroup_createconsumer(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, name)
    r.zadd(protocol.HEARTBEATS_KEY, {"alive-idle": time.time(), "long-silent": time.time() - 31})
    time.sleep(0.05)
    assert worker.queue.prune_consumers() == 2
    names = {c["name"] for c in r.xinfo_consumers(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)}
    assert names == {b"dead-with-job", b"alive-idle"}
