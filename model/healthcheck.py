"""Container health check: exit 0 when every worker process of this host has a fresh heartbeat and its model
warmed (ready="1"), 1 otherwise. `python healthcheck.py` (docker-compose.yml runs it in each model container).

Readiness of this container only: another container's workers never make this one healthy, and a worker
process that died (its supervisor restarts it) shows as missing until its replacement is warm.
"""

from __future__ import annotations

import socket
import sys

import redis

from resnet_common import heartbeats
import settings
from session import resolve_topology


def ready_workers(r: redis.Redis, host: str, ttl_s: float) -> int:
    """Workers on `host` whose heartbeat is younger than ttl_s and that report ready="1"."""
    status = heartbeats.live_status(r, ttl_s, ("host", "ready"))
    return sum(1 for _, values in status if values and values[0] == host.encode() and values[1] == b"1")


def main() -> int:
    cfg = settings.load()
    expected, _ = resolve_topology(cfg)
    try:
        r = redis.Redis(
            host=cfg.REDIS_HOST,
            port=cfg.REDIS_PORT,
            db=cfg.REDIS_DB,
            password=cfg.REDIS_PASSWORD,
            socket_timeout=2,
            socket_connect_timeout=2,
        )
        ready = ready_workers(r, socket.gethostname(), cfg.HEARTBEAT_TTL_S)
    except redis.RedisError as exc:
        print(f"unhealthy: redis unreachable ({type(exc).__name__})")
        return 1
    print(f"{ready}/{expected} worker(s) ready on {socket.gethostname()}")
    return 0 if ready >= expected else 1


if __name__ == "__main__":
    sys.exit(main())
