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
