"""job_queue.JobQueue: reclaiming from dead consumers, delivery limits, dead letters, a lost group, pruning, and the
streams of named versions."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from resnet_common import protocol
from testkit import wait_until
from constants import Outcome
from helpers import deliver, enqueue, pending, photo, result
import job_queue
from job_queue import JobQueue, connect

V2_STREAM = protocol.version_stream("2")


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


@pytest.fixture
def queue_of(make_cfg):
    """JobQueue(version) of a worker serving that version, its groups created."""

    def make(version: str, name: str = "", **overrides) -> JobQueue:
        cfg = make_cfg(**overrides)
        queue = JobQueue(connect(cfg, 100), cfg, name or f"w-v{version}", version)
        queue.ensure_group()
        return queue

    return make


def test_a_worker_reads_the_shared_stream_and_its_versions_only(r, queue_of):
    v1, v2 = queue_of("1"), queue_of("2")
    named, shared = enqueue(r, photo(), stream=V2_STREAM), enqueue(r, photo())
    assert [(j.id, j.stream) for j in v1.read(8, None)] == [(shared, protocol.JOB_STREAM)]
    jobs = v2.read(8, None)
    assert [(j.id, j.stream) for j in jobs] == [(named, V2_STREAM)]
    v2.answer([(jobs[0], {"ok": True})])
    assert r.xlen(V2_STREAM) == 0 and r.xpending(V2_STREAM, protocol.CONSUMER_GROUP)["pending"] == 0
    assert result(r, named, timeout=1) == {"ok": True}


def test_jobs_read_beyond_the_count_are_carried_to_the_next_read_and_stay_leased(r, queue_of):
    queue = queue_of("2")
    named = [enqueue(r, photo(), stream=V2_STREAM) for _ in range(2)]
    shared = [enqueue(r, photo()) for _ in range(2)]
    first = queue.read(2, None)  # COUNT 2 from each stream: four entries came back
    assert [j.id for j in first] == named  # the version's own jobs first
    queue.answer([(job, {"ok": True}) for job in first])
    queue.release()  # what the worker does after each batch: the carried jobs are still held
    carried = r.xpending_range(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, "-", "+", 10)
    assert queue.held() == sorted(p["message_id"].decode() for p in carried) and len(carried) == 2
    assert [j.id for j in queue.read(8, None)] == shared


def test_a_versions_stale_jobs_are_reclaimed_only_by_workers_serving_it(r, queue_of):
    dead = queue_of("2", "w-dead", CLAIM_IDLE_MS=10)
    job_id = enqueue(r, photo(), stream=V2_STREAM)
    assert len(dead.read(1, None)) == 1  # then its worker dies
    time.sleep(0.05)
    assert queue_of("1", CLAIM_IDLE_MS=10).claim_stale(8) == ([], False)
    jobs, _ = queue_of("2", CLAIM_IDLE_MS=10).claim_stale(8)
    assert [(j.id, j.stream, j.deliveries) for j in jobs] == [(job_id, V2_STREAM, 2)]


def test_serving_another_version_reads_its_stream(r, queue_of):
    queue = queue_of("1")
    job_id = enqueue(r, photo(), stream=V2_STREAM)
    assert queue.read(8, None) == []
    queue.serve("2")
    assert [j.id for j in queue.read(8, None)] == [job_id]


def test_a_stream_key_holding_another_type_is_moved_aside_and_read_again_at_once(r, make_worker, caplog):
    """A string at the version's stream fails every command naming it, the XREADGROUP of both streams included: the
    worker moves it out of the way, keeps it for a human, and serves both streams in the same step."""
    versioned = protocol.version_stream("1")  # what a worker serving a MODEL_DIR outside a repository reads
    r.set(versioned, "not a stream")
    worker = make_worker(CLAIM_IDLE_MS=1)
    shared = enqueue(r, photo())
    assert worker.step(block=False) == 1  # groups, reclaim, fair share, pruning and the read: none raised
    assert result(r, shared, timeout=1)["ok"] is True
    assert worker.queue.streams == (protocol.JOB_STREAM, versioned)
    assert r.get(protocol.set_aside_key(versioned)) == b"not a stream"
    assert [m for m in caplog.messages if "not a stream" in m] == [
        f"{versioned} held a string, not a stream: moved it to {protocol.set_aside_key(versioned)} (kept 7 days)"
    ]
    moved = {"worker": "w-test", "kind": "key_moved_aside"}
    assert worker.metrics.registry.get_sample_value("ml_worker_errors_total", moved) == 1
    named = enqueue(r, photo(), stream=versioned)
    assert worker.step(block=False) == 1
    assert result(r, named, timeout=1)["ok"] is True


def test_a_stream_key_redis_will_not_move_is_set_aside_and_the_other_served(
    r, redis_server, make_worker, monkeypatch, caplog
):
    """Where Redis refuses the rename (an ACL), the shared stream is served meanwhile, and the version's once its key
    is a stream again."""
    monkeypatch.setattr(job_queue, "WRONG_TYPE_RETRY_S", 0.3)
    versioned = protocol.version_stream("1")
    r.set(versioned, "not a stream")
    worker = make_worker(CLAIM_IDLE_MS=1)
    shared = enqueue(r, photo())
    with redis_server.denied("rename"):
        assert worker.step(block=False) == 1
        assert result(r, shared, timeout=1)["ok"] is True
        assert worker.queue.streams == (protocol.JOB_STREAM,)
    refused, set_aside = [m for m in caplog.messages if "not a stream" in m or "moved aside" in m]
    assert refused.startswith(f"{versioned} holds another type of value and could not be moved aside: ")
    assert "can't run this command" in refused  # Redis' own reason
    assert set_aside == (
        f"{versioned} holds a string, not a stream: its jobs cannot be read until it is one again (tried every "
        "0.3 s); the other stream is still served"
    )
    r.delete(versioned)
    time.sleep(0.35)
    named = enqueue(r, photo(), stream=versioned)
    assert worker.step(block=False) == 1  # the group recreated on the fresh stream
    assert result(r, named, timeout=1)["ok"] is True
    assert worker.queue.streams == (protocol.JOB_STREAM, versioned)


def test_with_every_stream_set_aside_a_read_waits_its_block_time_and_nothing_raises(r, redis_server, queue_of):
    queue = queue_of("2")
    r.set(protocol.JOB_STREAM, "x")
    r.delete(V2_STREAM)
    r.hset(V2_STREAM, "a", "b")
    with redis_server.denied("rename"):
        started = time.monotonic()
        assert queue.read(8, 200) == []
        assert 0.2 <= time.monotonic() - started < 1.0  # not a busy loop, and no longer than a blocking read
        assert queue.streams == ()
        assert queue.claim_stale(8) == ([], False)
        assert queue.fair_share(8) == 8
        assert queue.prune_consumers() == 0


@pytest.mark.parametrize("edit", ["delete", "set", "delete, then set"])
def test_a_stream_key_deleted_or_replaced_during_a_blocking_read_is_served_again(r, queue_of, edit, caplog):
    """Redis ends a blocking XREADGROUP on a key that goes away with an UNBLOCKED error: the read recreates the group
    (moving a stray value aside first) and reads on, instead of failing the worker's step."""
    queue = queue_of("2")
    queue.ensure_group()
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(queue.read, 8, 3000)
        wait_until(lambda: any("b" in c["flags"] for c in r.client_list()), 5, "the read to block", 0.01)
        if edit.startswith("delete"):
            r.delete(protocol.JOB_STREAM)
            time.sleep(0.05)  # the read, retried, waits on the group recreated: interrupted again by the SET
        if edit.endswith("set"):
            r.set(protocol.JOB_STREAM, "a hand edit")
        wait_until(lambda: r.type(protocol.JOB_STREAM) == b"stream", 5, "the group recreated", 0.01)
        job_id = enqueue(r, photo())
        assert [job.id for job in reading.result(timeout=5)] == [job_id]
    assert any("went away while this worker waited" in m for m in caplog.messages)


def test_a_stray_client_rewriting_a_stream_key_at_once_gets_it_set_aside_not_a_busy_loop(r, queue_of, monkeypatch):
    """Each read moves a stray value aside once; one written again before the retry sets the stream aside."""
    queue = queue_of("2")
    queue.ensure_group()
    move_aside = job_queue.key_types.move_aside

    def and_rewrite(client, key, expected):  # the stray client writes again right after each move
        kind = move_aside(client, key, expected)
        if kind:
            r.set(key, "again")
        return kind

    monkeypatch.setattr(job_queue.key_types, "move_aside", and_rewrite)
    r.delete(protocol.JOB_STREAM)
    r.set(protocol.JOB_STREAM, "x")
    assert queue.read(8, None) == []
    assert queue.streams == (V2_STREAM,)
    assert r.get(protocol.set_aside_key(protocol.JOB_STREAM)) == b"x" and r.get(protocol.JOB_STREAM) == b"again"


def test_a_heartbeat_set_holding_another_type_leaves_jobs_served(r, make_worker):
    """The fair share counts live workers in ml:heartbeats and the pruner reads it: neither may stop the loop."""
    worker = make_worker(CLAIM_IDLE_MS=1, BATCH_SHARE=1)
    worker.step(block=False)  # the group exists
    r.xgroup_createconsumer(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, "idle-with-nothing-pending")
    r.set(protocol.HEARTBEATS_KEY, "a hand edit")
    job_ids = [enqueue(r, photo()) for _ in range(3)]
    assert worker.step(block=False) == 3  # greedy: the share cannot be counted
    assert all(result(r, job_id, timeout=1)["ok"] for job_id in job_ids)
    time.sleep(0.01)
    assert worker.queue.prune_consumers() == 0  # no heartbeat could be read, so none proved dead
    names = {c["name"] for c in r.xinfo_consumers(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)}
    assert b"idle-with-nothing-pending" in names


def test_answering_reads_the_next_jobs_in_the_same_round_trip_version_first_and_leased(r, queue_of):
    queue = queue_of("2")
    first = enqueue(r, photo())
    [job] = queue.read(8, None)
    shared, named = enqueue(r, photo()), enqueue(r, photo(), stream=V2_STREAM)
    queue.answer([(job, {"ok": True})], read_ahead=8)
    assert result(r, first, timeout=1) == {"ok": True} and r.xlen(protocol.JOB_STREAM) == 1
    pending = r.xpending_range(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, "-", "+", 10)
    pending += r.xpending_range(V2_STREAM, protocol.CONSUMER_GROUP, "-", "+", 10)
    assert queue.carried == 2 and queue.held() == sorted(p["message_id"].decode() for p in pending)  # leased
    assert [(j.id, j.stream) for j in queue.read(8, None)] == [(named, V2_STREAM), (shared, protocol.JOB_STREAM)]


def test_reading_ahead_takes_only_this_workers_share_and_nothing_when_nothing_waits(r, queue_of):
    queue = queue_of("1", name="w-a")
    r.zadd(protocol.HEARTBEATS_KEY, {"w-a": time.time(), "w-b": time.time(), "w-gone": time.time() - 3600})
    ids = [enqueue(r, photo()) for _ in range(6)]
    [job] = queue.read(1, None)
    queue.answer([(job, {"ok": True})], read_ahead=8)
    assert queue.carried == 3  # ceil(5 unanswered / 2 live workers): the answered one no longer counts
    taken = queue.read(8, None)
    assert [j.id for j in taken] == ids[1:4]
    queue.answer([(j, {"ok": True}) for j in taken], read_ahead=8)
    assert queue.carried == 1  # ceil(2 / 2)
    carried = queue.read(8, None)
    rest = queue.read(8, None)  # read the ordinary way: nothing carried
    assert [j.id for j in carried + rest] == ids[4:]
    queue.answer([(j, {"ok": True}) for j in carried + rest], read_ahead=8)
    assert queue.carried == 0 and r.xlen(protocol.JOB_STREAM) == 0


def test_a_heartbeat_set_that_cannot_be_counted_leaves_the_read_ahead_greedy(r, queue_of):
    queue = queue_of("1")
    enqueue(r, photo())
    [job] = queue.read(1, None)
    r.set(protocol.HEARTBEATS_KEY, "a hand edit")
    waiting = [enqueue(r, photo()) for _ in range(3)]
    queue.answer([(job, {"ok": True})], read_ahead=8)
    assert queue.carried == 3 and [j.id for j in queue.read(8, None)] == waiting  # read in the answer's transaction


def test_a_read_ahead_that_fails_still_answers_and_the_next_read_mends_the_fault(r, queue_of):
    queue = queue_of("1")
    job_id = enqueue(r, photo())
    [job] = queue.read(8, None)
    later = enqueue(r, photo())
    r.xgroup_destroy(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)  # Redis lost the group: the XACK finds nothing
    queue.answer([(job, {"ok": True})], read_ahead=8)
    assert result(r, job_id, timeout=1) == {"ok": True} and queue.carried == 0
    assert [j.id for j in queue.read(8, None)] == [later]  # the group is recreated from the stream's start


class SwitchReady:
    """A model watch with another version built and warmed, not yet taken."""

    switch_ready = True

    def take(self, current):
        return None


def test_a_worker_reads_ahead_a_full_batch_except_while_stopping_or_about_to_switch(r, make_worker):
    worker = make_worker(BATCH_SIZE=2)
    ids = [enqueue(r, photo()) for _ in range(7)]
    assert worker.step(block=False) == 2 and worker.queue.carried == 2
    worker.watch = SwitchReady()
    assert worker.step(block=False) == 2 and worker.queue.carried == 0  # the next batch may read another stream
    worker.watch = None
    assert worker.step(block=False) == 2 and worker.queue.carried == 1
    stop = threading.Event()
    stop.set()
    assert worker.step(stop) == 1 and worker.queue.carried == 0  # stopping: the jobs in hand are the last
    assert all(result(r, i, timeout=1)["ok"] for i in ids)


def test_without_read_ahead_a_worker_answers_then_reads(r, make_worker):
    worker = make_worker(BATCH_SIZE=2, READ_AHEAD=0)
    ids = [enqueue(r, photo()) for _ in range(3)]
    assert worker.step(block=False) == 2 and worker.queue.carried == 0
    assert r.xpending(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)["pending"] == 0
    assert worker.step(block=False) == 1 and result(r, ids[2], timeout=1)["ok"]
