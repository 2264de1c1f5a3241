"""Worker metrics (own registry, worker label) and the heartbeat entries in Redis."""

from __future__ import annotations

import os
import time

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from resnet_common import protocol
from constants import Outcome
from heartbeat import Heartbeat
from metrics import WorkerMetrics
from testkit import free_port, wait_until


def test_every_sample_has_the_worker_label():
    m = WorkerMetrics("w-1")
    m.job(Outcome.OK, 3)
    m.batch(3, 0.2)
    m.queue_wait(0.01)
    m.preprocess(0.003)
    m.error("redis")
    m.reclaimed(2)
    families = {f.name: f for f in text_string_to_metric_families(m.text())}
    for name in (
        "ml_worker_jobs",
        "ml_worker_batch_size",
        "ml_worker_inference_seconds",
        "ml_worker_queue_wait_seconds",
        "ml_worker_preprocess_seconds",
        "ml_worker_errors",
        "ml_worker_reclaimed",
    ):
        samples = families[name].samples
        assert samples and all(s.labels["worker"] == "w-1" for s in samples), name
    assert m.count(Outcome.OK) == 3 and m.count(Outcome.EXPIRED) == 0
    assert 'ml_worker_jobs_total{outcome="expired",worker="w-1"} 0.0' in m.text()


def test_metrics_port_serves_the_same_text():
    import urllib.request

    m = WorkerMetrics("w-port")
    m.job(Outcome.OK, 2)
    port = free_port()
    m.serve(port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'ml_worker_jobs_total{outcome="ok",worker="w-port"} 2.0' in body
    assert "_created" not in body


def test_registries_are_separate():
    a, b = WorkerMetrics("a"), WorkerMetrics("b")
    a.job(Outcome.OK)
    assert a.count(Outcome.OK) == 1 and b.count(Outcome.OK) == 0


def test_heartbeat_advertises_the_worker(r, make_cfg):
    cfg = make_cfg(HEARTBEAT_TTL_S=7)
    metrics = WorkerMetrics("w-hb")
    hb = Heartbeat(r, cfg, "w-hb", {"batch_size": "8", "threads": "1"}, metrics.text)
    hb.beat()
    fields = {k.decode(): v.decode() for k, v in r.hgetall(protocol.worker_key("w-hb")).items()}
    assert fields["ready"] == "0" and fields["pid"] == str(os.getpid()) and fields["batch_size"] == "8"
    assert 'worker="w-hb"' in fields["metrics"]
    assert 0 < r.ttl(protocol.worker_key("w-hb")) <= 7
    assert abs(r.zscore(protocol.HEARTBEATS_KEY, "w-hb") - time.time()) < 2
    hb.set(ready="1", model="ResNet50", variant="fp32")
    hb.beat()
    assert r.hget(protocol.worker_key("w-hb"), "ready") == b"1"
    assert r.hget(protocol.worker_key("w-hb"), "variant") == b"fp32"
    hb.stop(remove=True)
    assert r.zscore(protocol.HEARTBEATS_KEY, "w-hb") is None and not r.exists(protocol.worker_key("w-hb"))


def test_keys_holding_another_type_are_moved_aside_by_the_next_beat(r, redis_server, make_cfg):
    moved = []
    hb = Heartbeat(r, make_cfg(), "w-edited", {"threads": "1"}, on_moved_aside=lambda: moved.append(1))
    status = protocol.worker_key("w-edited")
    r.set(status, "a hand edit")
    hb.beat()
    assert r.hget(status, "threads") == b"1" and r.ttl(status) > 0
    assert r.get(protocol.set_aside_key(status)) == b"a hand edit"
    r.delete(protocol.HEARTBEATS_KEY)
    r.set(protocol.HEARTBEATS_KEY, "a hand edit")
    hb.beat()
    assert r.zscore(protocol.HEARTBEATS_KEY, "w-edited") is not None  # this worker counts as alive again
    assert r.get(protocol.set_aside_key(protocol.HEARTBEATS_KEY)) == b"a hand edit"
    assert len(moved) == 2  # counted once per key moved
    r.delete(protocol.HEARTBEATS_KEY)
    r.set(protocol.HEARTBEATS_KEY, "a hand edit")
    with redis_server.denied("rename"), pytest.raises(redis.ResponseError):  # left as it is: the beat fails
        hb.beat()
    assert r.get(protocol.HEARTBEATS_KEY) == b"a hand edit"


def test_heartbeat_thread_beats_and_forgets_the_long_dead(r, make_cfg):
    r.zadd(protocol.HEARTBEATS_KEY, {"ancient": time.time() - 7200})
    hb = Heartbeat(r, make_cfg(HEARTBEAT_INTERVAL_S=0.05), "w-thread", {})
    hb.start()
    try:
        first = wait_until(lambda: r.zscore(protocol.HEARTBEATS_KEY, "w-thread"), 5, "a first beat", 0.02)
        wait_until(lambda: r.zscore(protocol.HEARTBEATS_KEY, "w-thread") > first, 5, "a second beat", 0.02)
        assert r.zscore(protocol.HEARTBEATS_KEY, "ancient") is None
    finally:
        hb.stop()


def test_heartbeat_thread_outlives_an_unexpected_error(r, make_cfg):
    """A bug in what a beat sends (here the metrics text) skips that beat; the thread goes on beating."""
    calls = []

    def metrics_text() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("dictionary changed size during iteration")
        return "# metrics\n"

    hb = Heartbeat(r, make_cfg(HEARTBEAT_INTERVAL_S=0.05, METRICS_PUSH_INTERVAL_S=0), "w-bug", {}, metrics_text)
    hb.start()
    try:
        wait_until(lambda: r.zscore(protocol.HEARTBEATS_KEY, "w-bug"), 5, "a beat after the failed one", 0.02)
        assert len(calls) >= 2 and r.hget(protocol.worker_key("w-bug"), "metrics") == b"# metrics\n"
    finally:
        hb.stop()
