"""Which workers are alive: the one reading of the heartbeat set (protocol.HEARTBEATS_KEY, a zset of worker name →
time of its last beat) and of the live workers' status hashes, shared by the API's fleet view, the repository pruner
and the container health check.

Only workers write the set, but anyone with the Redis password can: a member that is not UTF-8 (a hand edit, a
stray client) cannot be a worker's name and is skipped, so it never fails a readiness route or a health check.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from resnet_common import protocol

if TYPE_CHECKING:
    import redis


def live_names(r: redis.Redis, ttl_s: float) -> list[str]:
    """Names of the workers whose last heartbeat is younger than `ttl_s`, oldest beat first."""
    names = []
    for raw in r.zrangebyscore(protocol.HEARTBEATS_KEY, time.time() - ttl_s, "+inf"):
        try:
            names.append(raw.decode())
        except UnicodeDecodeError:
            continue
    return names


def live_status(r: redis.Redis, ttl_s: float, fields: Sequence[str]) -> list[tuple[str, list[bytes | None] | None]]:
    """Each live worker (live_names) with the raw values of `fields` in its status hash (protocol.worker_key; None
    where a field or the hash is missing), read in one round trip for all of them. A status key holding another
    type of value (a hand edit) gives None instead of the list: that worker's status is unknown, the others' are
    still read."""
    names = live_names(r, ttl_s)
    if not names:
        return []
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.hmget(protocol.worker_key(name), list(fields))
    replies = pipe.execute(raise_on_error=False)
    return [(name, None if isinstance(values, Exception) else values) for name, values in zip(names, replies)]
