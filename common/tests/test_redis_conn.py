"""Where a service connects: REDIS_SENTINELS parsing (the failover itself: tests/test_sentinel_failover.py)."""

from __future__ import annotations

import pytest
import redis

from resnet_common import redis_conn
from resnet_common.settings import SettingsLoader, SharedSettings

load = SettingsLoader(SharedSettings, "settings").load


def test_sentinel_addresses_are_parsed_and_bad_ones_named():
    assert redis_conn.sentinel_addresses(" s1:26379, 198.18.0.2:26380 ,") == [("s1", 26379), ("198.18.0.2", 26380)]
    assert redis_conn.sentinel_addresses(None) == [] and redis_conn.sentinel_addresses("") == []
    for bad in ("a:x", "s1", ":1", "s1:²"):
        with pytest.raises(ValueError, match=f"REDIS_SENTINELS entry {bad!r}"):
            redis_conn.sentinel_addresses(bad)


def test_direct_connection_and_sentinel_mode_ignoring_host_and_port(redis_server):
    """REDIS_HOST/PORT name a live Redis, but with sentinels set (none answering) no master is found."""
    from testkit import refused_port

    direct = load(REDIS_HOST="127.0.0.1", REDIS_PORT=redis_server.port)
    assert redis_conn.make_client(direct).ping()
    with refused_port() as dead:
        cfg = load(REDIS_HOST="127.0.0.1", REDIS_PORT=redis_server.port, REDIS_SENTINELS=f"127.0.0.1:{dead}")
        with pytest.raises(redis.ConnectionError):
            redis_conn.make_client(cfg, socket_connect_timeout=0.5).ping()


def test_replies_are_parsed_by_hiredis(redis_server):
    """The services pin hiredis: without it redis-py silently falls back to its slower Python parser."""
    from redis._parsers import _HiredisParser

    pool = redis_conn.make_client(load(REDIS_HOST="127.0.0.1", REDIS_PORT=redis_server.port)).connection_pool
    connection = pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser)
    finally:
        pool.release(connection)


def test_connection_key_changes_with_every_redis_field_only():
    base = load()
    assert redis_conn.connection_key(base) == redis_conn.connection_key(load(HEARTBEAT_TTL_S=3))
    for name, value in [("REDIS_HOST", "other"), ("REDIS_DB", 2), ("REDIS_SENTINELS", "s:1"), ("REDIS_PASSWORD", "x")]:
        assert redis_conn.connection_key(load(**{name: value})) != redis_conn.connection_key(base), name
