"""Where the worker connects: REDIS_SENTINELS parsing (the failover itself: tests/test_sentinel_failover.py)."""

from __future__ import annotations

import pytest
import redis

import redis_conn
import settings


def test_sentinel_addresses_are_parsed_and_bad_ones_named():
    assert redis_conn.sentinel_addresses("a:1,b:2") == [("a", 1), ("b", 2)]
    with pytest.raises(ValueError, match="REDIS_SENTINELS entry 'a:x'"):
        redis_conn.sentinel_addresses("a:x")


def test_sentinel_mode_ignores_redis_host_and_port(redis_server):
    """REDIS_HOST/PORT name a live Redis, but with sentinels set (none answering) no master is found."""
    from testkit import refused_port

    with refused_port() as dead:
        cfg = settings.load(REDIS_HOST="127.0.0.1", REDIS_PORT=redis_server.port, REDIS_SENTINELS=f"127.0.0.1:{dead}")
        with pytest.raises(redis.ConnectionError):
            redis_conn.make_client(cfg, socket_connect_timeout=0.5).ping()
    assert redis_conn.make_client(settings.load(REDIS_HOST="127.0.0.1", REDIS_PORT=redis_server.port)).ping()
