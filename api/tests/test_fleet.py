"""Which workers are alive and ready, read from their heartbeats in a real redis-server: the versions and runtimes
they serve, the reading a process reuses for a second, and the one check an inference makes before queueing."""

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


def test_served_runtimes_name_each_versions_runtimes_and_default_to_onnxruntime(redis_env):
    heartbeat(redis_env, "a", model_version="2", runtime="openvino")
    heartbeat(redis_env, "b", model_version="2")  # reports no runtime
    heartbeat(redis_env, "c", model_version="10", runtime="openvino")
    heartbeat(redis_env, "loading", ready=False, model_version="3", runtime="onnxruntime")
    served = fleet.served_runtimes(fleet.live_workers(redis_env))
    assert served == {"2": ("onnxruntime", "openvino"), "10": ("openvino",)} and list(served) == ["2", "10"]


def test_a_process_reuses_its_reading_for_a_second_then_reads_again(redis_env):
    heartbeat(redis_env, "a", model_version="1")
    assert fleet.ready_versions(redis_env, now=100.0) == ("1",)
    heartbeat(redis_env, "b", model_version="2")
    assert fleet.ready_versions(redis_env, now=100.0 + fleet.READING_TTL_S / 2) == ("1",)  # the same reading
    assert fleet.ready_versions(redis_env, now=100.0 + fleet.READING_TTL_S) == ("1", "2")
    assert fleet.ready_runtimes(redis_env, now=100.0 + fleet.READING_TTL_S) == {
        "1": ("onnxruntime",),
        "2": ("onnxruntime",),
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
