"""Build the API's Redis clients: straight to REDIS_HOST:REDIS_PORT, or to whichever server Sentinel names master.

With REDIS_SENTINELS set (comma-separated host:port), every new connection asks the sentinels for the current
master of REDIS_SENTINEL_MASTER (redis-py's SentinelConnectionPool), so after a failover the next command reaches
the promoted replica; REDIS_HOST/REDIS_PORT are ignored then. A command caught on the dead master fails fast
(connection refused or reset, or a ReadOnlyError from a demoted one, turned into ConnectionError by redis-py).
"""

from typing import Any

import redis
from redis.sentinel import Sentinel

import settings


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


def connection_key() -> tuple:
    """Everything that decides where and how to connect (callers cache one client per key)."""
    return (
        settings.REDIS_HOST,
        settings.REDIS_PORT,
        settings.REDIS_DB,
        settings.REDIS_PASSWORD,
        settings.REDIS_SENTINELS,
        settings.REDIS_SENTINEL_MASTER,
        settings.REDIS_SENTINEL_PASSWORD,
    )


def make_client(**options: Any) -> redis.Redis:
    """A client with its own pool; `options` are connection options (timeouts, retry, health checks)."""
    sentinels = sentinel_addresses(settings.REDIS_SENTINELS)
    if not sentinels:
        pool = redis.ConnectionPool(
            host=settings.REDIS_HOST,
            port=settings.REDIS_PORT,
            db=settings.REDIS_DB,
            password=settings.REDIS_PASSWORD,
            **options,
        )
        return redis.Redis(connection_pool=pool)
    timeout = options.get("socket_connect_timeout", settings.REDIS_SOCKET_TIMEOUT_S)
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={
            "password": settings.REDIS_SENTINEL_PASSWORD,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
    )
    return sentinel.master_for(
        settings.REDIS_SENTINEL_MASTER, db=settings.REDIS_DB, password=settings.REDIS_PASSWORD, **options
    )
