"""Which workers are alive and ready, read from their heartbeats in a real redis-server: the versions and runtimes
they serve, the reading a process reuses for a second, and the one check an inference makes before queueing."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

import fleet
from errors import BrokerUnavailable, NoWorker
from fakeworker import heartbeat
from resnet_common import protocol
from testkit import free_port


def test_served_versions_sort_numerically_and_skip_loading_workers(redis_env):
    heartbeat(redis_env, "a", model_version="10")
    heartbeat(redis_env, "b", model_version="9")
    heartbeat(redis_env, "loading", ready=False, model_version="11")
    assert fleet.served_versions(fleet.live_workers(redis_env)) == ["9", "10"]
    assert sorted(["10", "²", "9", "b"], key=fleet.version_order) == ["9", "10", "b", "²"]  # names after numbers


def test_served_models_name_each_versions_runtimes_and_classes(redis_env):
    heartbeat(redis_env, "a", model_version="2", runtime="openvino")
    heartbeat(redis_env, "b", model_version="2", classes="")  # reports no runtime, nor classes
    heartbeat(redis_env, "c", model_version="10", runtime="openvino", classes="10")
    heartbeat(redis_env, "d", model_version="11", classes="many")  # not a count: unknown
    heartbeat(redis_env, "loading", ready=False, model_version="3", runtime="onnxruntime")
    served = fleet.served_models(fleet.live_workers(redis_env))
    assert served == {
        "2": fleet.Served(("onnxruntime", "openvino"), 1000),
        "10": fleet.Served(("openvino",), 10),
        "11": fleet.Served(("onnxruntime",), None),
    }
    assert list(served) == ["2", "10", "11"]


def test_a_process_reuses_its_reading_for_a_second_then_reads_again(redis_env):
    heartbeat(redis_env, "a", model_version="1")
    assert fleet.ready_versions(redis_env, now=100.0) == ("1",)
    heartbeat(redis_env, "b", model_version="2")
    assert fleet.ready_versions(redis_env, now=100.0 + fleet.READING_TTL_S / 2) == ("1",)  # the same reading
    assert fleet.ready_versions(redis_env, now=100.0 + fleet.READING_TTL_S) == ("1", "2")
    assert fleet.ready_models(redis_env, now=100.0 + fleet.READING_TTL_S) == {
        "1": fleet.Served(("onnxruntime",), 1000),
        "2": fleet.Served(("onnxruntime",), 1000),
    }
    redis_env.zrem(protocol.HEARTBEATS_KEY, "a", "b")
    fleet.forget_reading()
    assert fleet.ready_versions(redis_env, now=100.0 + fleet.READING_TTL_S) == ()


def test_a_reading_without_a_ready_worker_is_kept_only_briefly(redis_env):
    fleet.forget_reading()
    heartbeat(redis_env, "loading", ready=False, model_version="1")
    assert fleet.ready_versions(redis_env, now=100.0) == ()
    heartbeat(redis_env, "loading", model_version="1")  # warmed up: ready
    assert fleet.ready_versions(redis_env, now=100.0 + fleet.EMPTY_READING_TTL_S / 2) == ()  # the same reading
    assert fleet.ready_versions(redis_env, now=100.0 + 2 * fleet.EMPTY_READING_TTL_S) == ("1",)
    assert 2 * fleet.EMPTY_READING_TTL_S < fleet.READING_TTL_S  # a reading that found one would still be kept


def test_one_thread_reads_an_expired_reading_while_the_others_keep_it(redis_env, monkeypatch):
    heartbeat(redis_env, "a", model_version="1")
    assert fleet.ready_versions(redis_env, now=100.0) == ("1",)
    heartbeat(redis_env, "b", model_version="2")
    reads, release = [], threading.Event()
    read_heartbeats = fleet.live_workers

    def slow_read(r):
        reads.append(1)
        assert release.wait(10)
        return read_heartbeats(r)

    monkeypatch.setattr(fleet, "live_workers", slow_read)
    expired = 100.0 + fleet.READING_TTL_S
    with ThreadPoolExecutor(8) as pool:
        try:
            answers = [pool.submit(fleet.ready_versions, redis_env, expired) for _ in range(8)]
            deadline = time.monotonic() + 10
            while sum(a.done() for a in answers) < 7 and time.monotonic() < deadline:
                time.sleep(0.01)
            done = [a.result() for a in answers if a.done()]
            assert len(reads) == 1 and done == [("1",)] * 7  # the expired reading, while one thread reads
        finally:
            release.set()
        assert [a.result(timeout=10) for a in answers].count(("1", "2")) == 1
    assert fleet.ready_versions(redis_env, now=expired) == ("1", "2") and len(reads) == 1  # kept for a second


def test_threads_that_found_no_worker_all_read_again(redis_env, monkeypatch):
    heartbeat(redis_env, "loading", ready=False, model_version="1")
    assert fleet.ready_versions(redis_env, now=100.0) == ()
    heartbeat(redis_env, "loading", model_version="1")
    reads, both = [], threading.Barrier(2, timeout=10)
    read_heartbeats = fleet.live_workers

    def read_together(r):
        reads.append(1)
        both.wait()  # the second thread reads too, while the first is still reading
        return read_heartbeats(r)

    monkeypatch.setattr(fleet, "live_workers", read_together)
    later = 100.0 + 2 * fleet.EMPTY_READING_TTL_S
    with ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(fleet.ready_versions, redis_env, later) for _ in range(2)]
        assert [a.result(timeout=10) for a in answers] == [("1",), ("1",)]  # neither refused on the old "none"
    assert len(reads) == 2


def test_require_ready_gives_the_served_versions_or_refuses_at_once(redis_env, monkeypatch):
    heartbeat(redis_env, "loading", ready=False)
    with pytest.raises(NoWorker, match="no worker is ready"):
        fleet.require_ready(redis_env, queueing=True)
    monkeypatch.setenv("SCALE_FROM_ZERO", "1")
    assert fleet.require_ready(redis_env, queueing=True) == ()  # the queued job wakes the first worker
    with pytest.raises(NoWorker):  # describing the model still needs a worker
        fleet.require_ready(redis_env)
    heartbeat(redis_env, "w", model_version="4")
    fleet.forget_reading()
    assert fleet.require_ready(redis_env) == fleet.require_ready(redis_env, queueing=True) == ("4",)


def test_unreadable_heartbeats_queue_a_job_but_refuse_the_rest(redis_env):
    redis_env.set(protocol.HEARTBEATS_KEY, "a hand edit")  # WRONGTYPE until a worker moves it aside
    assert fleet.require_ready(redis_env, queueing=True) == ()  # proves nothing: the queue decides
    with pytest.raises(BrokerUnavailable, match="ResponseError"):
        fleet.require_ready(redis_env)
    with pytest.raises(BrokerUnavailable, match="ConnectionError"):
        fleet.require_ready(redis.Redis(port=free_port(), socket_timeout=0.5), queueing=True)
