"""A Redis client for a service's settings: straight to REDIS_HOST:REDIS_PORT, or to whichever server Sentinel names
master.

With REDIS_SENTINELS set (comma-separated host:port) every new connection asks the sentinels for the current master
of REDIS_SENTINEL_MASTER (redis-py's SentinelConnectionPool), so after a failover the next connection reaches the
promoted replica; REDIS_HOST/REDIS_PORT are ignored then. A command caught on the dead master fails fast (connection
refused or reset, or a ReadOnlyError from a demoted one, turned into ConnectionError by redis-py): the API answers
503, the worker loop backs off and reconnects.

Replies are parsed by hiredis (C), which redis-py picks when it is installed: its own Python parser costs more CPU
per reply, most for a worker's batch read of pixel jobs.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import redis
from redis.sentinel import Sentinel

from resnet_common.settings import SharedSettings


def sentinel_addresses(raw: str | None) -> list[tuple[str, int]]:
    """'h1:26379, h2:26379' → [("h1", 26379), ("h2", 26379)]; a bad entry names the variable."""
    addresses = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not (port.isascii() and port.isdigit()):  # '²' is isdigit(), not int()
            raise ValueError(f"REDIS_SENTINELS entry {item!r} is not host:port")
        addresses.append((host, int(port)))
    return addresses


def connection_key(cfg: SharedSettings | ModuleType) -> tuple:
    """Everything that decides where and how to connect (callers that cache one client per key use it). `cfg` is a
    settings snapshot, or a service's settings module (each attribute read from the environment now)."""
    return tuple(getattr(cfg, f.name) for f in _REDIS_FIELDS)


def make_client(cfg: SharedSettings | ModuleType, **options: Any) -> redis.Redis:
    """A client with its own pool; `options` are connection options (timeouts, retry, protocol, health checks).
    The sentinels are asked with `socket_connect_timeout`, else REDIS_SOCKET_TIMEOUT_S."""
    sentinels = sentinel_addresses(cfg.REDIS_SENTINELS)
    if not sentinels:
        return redis.Redis(
            host=cfg.REDIS_HOST, port=cfg.REDIS_PORT, db=cfg.REDIS_DB, password=cfg.REDIS_PASSWORD, **options
        )
    timeout = options.get("socket_connect_timeout", cfg.REDIS_SOCKET_TIMEOUT_S)
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={
            "password": cfg.REDIS_SENTINEL_PASSWORD,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
    )
    return sentinel.master_for(cfg.REDIS_SENTINEL_MASTER, db=cfg.REDIS_DB, password=cfg.REDIS_PASSWORD, **options)


_REDIS_FIELDS = [f for f in SharedSettings.__dataclass_fields__.values() if f.name.startswith("REDIS_")]
