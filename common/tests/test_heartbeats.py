"""Which workers are alive: fresh heartbeats only, and a member that cannot be a worker's name skipped."""

from __future__ import annotations

import time

import redis

from resnet_common import heartbeats, protocol


def test_live_names_are_the_fresh_utf8_members_oldest_first(redis_server):
    r = redis.Redis(port=redis_server.port)
    now = time.time()
    r.zadd(protocol.HEARTBEATS_KEY, {"w-new": now, "w-old": now - 3, "w-dead": now - 60, b"\xff\xfe": now})
    assert heartbeats.live_names(r, ttl_s=10) == ["w-old", "w-new"]
    assert heartbeats.live_names(r, ttl_s=1) == ["w-new"]


def test_live_status_reads_the_fields_of_live_workers_only(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    now = time.time()
    r.zadd(protocol.HEARTBEATS_KEY, {"w1": now - 1, "w2": now, "w-dead": now - 60, b"\xff": now})
    r.hset(protocol.worker_key("w1"), mapping={"host": "h", "ready": "1"})
    r.hset(protocol.worker_key("w-dead"), mapping={"host": "h", "ready": "1"})
    calls_before = r.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
    status = heartbeats.live_status(r, 10, ("host", "ready"))
    assert status == [("w1", [b"h", b"1"]), ("w2", [None, None])]  # a live worker whose hash expired: no fields
    assert r.info("commandstats")["cmdstat_hmget"]["calls"] - calls_before == 2  # none for the dead or the stray
    r.delete(protocol.HEARTBEATS_KEY)
    assert heartbeats.live_status(r, 10, ("host",)) == []


def test_a_status_key_holding_another_type_is_an_unknown_status_for_that_worker_only(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    now = time.time()
    r.zadd(protocol.HEARTBEATS_KEY, {"w1": now - 1, "w2": now})
    r.hset(protocol.worker_key("w1"), mapping={"host": "h", "ready": "1"})
    r.set(protocol.worker_key("w2"), "a hand edit")
    assert heartbeats.live_status(r, 10, ("host", "ready")) == [("w1", [b"h", b"1"]), ("w2", None)]
