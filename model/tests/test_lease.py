"""lease.LeaseKeeper and JobQueue.refresh_leases: a live worker's slow batch is never taken over, a dead one's is."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from resnet_common import protocol
from helpers import enqueue, pending, pending_entries, photo, result


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
        seen += [v for v in pending_entries(r).values()]
        time.sleep(0.05)
    thread.join()
    assert seen and all(consumer == "w-slow" and deliveries == 1 and idle < 300 for consumer, idle, deliveries in seen)
    assert [r.llen(protocol.result_key(i)) for i in ids] == [1, 1]  # answered once, by the slow worker
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
    assert {v[0] for v in pending_entries(r).values()} == {"w-holder"}
    assert {v[2] for v in pending_entries(r).values()} == {1}
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
    r.xclaim(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, "w-thief", 0, [first.entry_id])
    time.sleep(0.05)
    assert holder.queue.refresh_leases() == 1
    assert pending_entries(r)[first.entry_id][0] == "w-thief"
    consumer, idle, deliveries = pending_entries(r)[second.entry_id]
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


def test_a_refresh_right_after_the_answer_reports_no_lost_lease(r, make_worker, monkeypatch, caplog):
    """The lease keeper runs beside the loop: a refresh between a batch's XACK and the rest of its answer finds the
    entries no longer pending. Acked by this worker, they are answered, not lost: nothing to warn about."""
    worker = make_worker()
    job_id = enqueue(r, photo())
    refreshed = []
    execute = redis.client.Pipeline.execute

    def execute_then_refresh(pipe, *args, **kwargs):
        acks = any(command[0] == "XACK" for command, _ in pipe.command_stack)
        replies = execute(pipe, *args, **kwargs)
        if acks and not refreshed:  # the keeper's turn, at the worst moment
            refreshed.append(worker.queue.refresh_leases())
        return replies

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute_then_refresh)
    worker.step(block=False)
    assert result(r, job_id, timeout=1)["ok"] is True and refreshed == [0]
    assert "lost the lease" not in caplog.text and worker.queue.held() == []
