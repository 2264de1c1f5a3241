"""Which workers are alive, read from their heartbeats; shared by /ready and /metrics."""

import time
from typing import Any

import redis

from resnet_common import protocol
import settings

STATUS_FIELDS = ("pid", "host", "model", "variant", "ready", "batch_size", "threads")


def live_workers(r: redis.Redis, with_metrics: bool = False) -> list[dict[str, Any]]:
    """Workers whose heartbeat is younger than HEARTBEAT_TTL_S, with the status fields of their hash."""
    cutoff = time.time() - settings.HEARTBEAT_TTL_S
    names = [n.decode() for n in r.zrangebyscore(protocol.HEARTBEATS_KEY, cutoff, "+inf")]
    if not names:
        return []
    fields = STATUS_FIELDS + (("metrics",) if with_metrics else ())
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.hmget(protocol.worker_key(name), fields)
    workers = []
    for name, values in zip(names, pipe.execute()):
        info: dict[str, Any] = {"name": name}
        for field, value in zip(fields, values):
            info[field] = value.decode("utf-8", "replace") if value is not None else None
        info["ready"] = info.get("ready") == "1"
        workers.append(info)
    return workers
