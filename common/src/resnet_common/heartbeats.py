"""Which workers are alive: the one reading of the heartbeat set (protocol.HEARTBEATS_KEY, a zset of worker name →
time of its last beat), shared by the API's fleet view, the repository pruner and the container health check.

Only workers write the set, but anyone with the Redis password can: a member that is not UTF-8 (a hand edit, a
stray client) cannot be a worker's name and is skipped, so it never fails a readiness route or a health check.
"""

from __future__ import annotations

import time

from resnet_common import protocol


def live_names(r, ttl_s: float) -> list[str]:
    """Names of the workers whose last heartbeat is younger than `ttl_s`, oldest beat first."""
    names = []
    for raw in r.zrangebyscore(protocol.HEARTBEATS_KEY, time.time() - ttl_s, "+inf"):
        try:
            names.append(raw.decode())
        except UnicodeDecodeError:
            continue
    return names
