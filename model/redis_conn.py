"""Build the worker's Redis client: straight to REDIS_HOST:REDIS_PORT, or to whichever server Sentinel names master.

With REDIS_SENTINELS set (comma-separated host:port) each new connection asks the sentinels for the current
master of REDIS_SENTINEL_MASTER (redis-py's SentinelConnectionPool); after a failover the worker loop's
reconnect (it backs off on ConnectionError) lands on the promoted replica. REDIS_HOST/REDIS_PORT are then ignored.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import Sentinel

from settings import Settings


def sentinel_addresses(raw: str | None) -> list[tuple[str, int]]:
    """'h1:26379, h2:26379' → [("h1", 26379), ("h2", 26379)]; a bad entry names the variable."""
    addresses = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS entry {item!r} is not host:port")
        addresses.append((host, int(port)))
    return addresses


def make_client(cfg: Settings, **options: Any) -> redis.Redis:
    """A client for `cfg`; `options` are connection options (timeouts, retry, protocol, health checks)."""
    sentinels = sentinel_addresses(cfg.REDIS_SENTINELS)
    if not sentinels:
        return redis.Redis(
            host=cfg.REDIS_HOST, port=cfg.REDIS_PORT, db=cfg.REDIS_DB, password=cfg.REDIS_PASSWORD, **options
        )
    timeout = options.get("socket_connect_timeout", 2)
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={
            "password": cfg.REDIS_SENTINEL_PASSWORD,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
    )
    return sentinel.master_for(cfg.REDIS_SENTINEL_MASTER, db=cfg.REDIS_DB, password=cfg.REDIS_PASSWORD, **options)
