"""Talk to Redis for the API: lazily built connection pools, backpressure, cache lookup, XADD a job, BLPOP its result.

Two pools: commands use short socket timeouts (Redis down → fail in well under a second when refused, at most
REDIS_SOCKET_TIMEOUT_S when unreachable); the blocking BLPOP gets a socket timeout just above the request
timeout so a silent network partition still cannot hold a request past its deadline. The enqueue (XADD) uses a
client that never retries: a retried XADD whose first attempt reached Redis would queue the job twice.
"""

import json
import logging
import threading
import time
import uuid
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import constants
import metrics
import redis_conn
import response_cache
import settings
from errors import BrokerUnavailable, PredictionFailed, PredictionTimeout, QueueFull

log = logging.getLogger(__name__)

_lock = threading.Lock()
_clients: dict[tuple, redis.Redis] = {}


def client(blocking: bool = False, retry: bool = True) -> redis.Redis:
    """The shared client (and its pool) for the current settings and kind; rebuilt only if the settings change
    (tests) — never at import time. Thread-safe: each command borrows a pooled connection."""
    timeout = settings.REDIS_SOCKET_TIMEOUT_S
    socket_timeout = settings.REQUEST_TIMEOUT_S + timeout if blocking else timeout
    key = redis_conn.connection_key() + (timeout, socket_timeout, blocking, retry)
    with _lock:
        r = _clients.get(key)
        if r is None:
            r = _clients[key] = redis_conn.make_client(
                socket_connect_timeout=timeout,
                socket_timeout=socket_timeout,
                # One immediate retry heals a pooled socket Redis closed; none for BLPOP (it would outlive the
                # deadline), none for the enqueue (a retried XADD could queue the job twice).
                retry=Retry(NoBackoff(), 1 if retry and not blocking else 0),
                health_check_interval=0,
            )
        return r


def submit(
    pixels: bytes,
    filename: str,
    top_k: int,
    deadline: float,
    preprocess: str = "keras",
    digest: str | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    """Answer from the response cache when `digest` (response_cache.request_digest) is given and cached, else
    enqueue one job (the decoded 224×224×3 uint8 pixels) and wait for its result dict until `deadline` (unix
    time); typed errors otherwise. A cached answer has "cached": true. `explain` adds the job field explain="1"
    (the worker then answers with a heatmap too)."""
    r = client()
    try:
        depth, cached = _prepare(r, digest)
        if cached is not None:
            return _decode(cached) | {"cached": True}
        if depth >= settings.MAX_QUEUE_DEPTH:
            raise QueueFull(f"queue is full ({depth} jobs waiting); retry later")
        job_id = uuid.uuid4().hex
        now = time.time()
        entry_id = client(retry=False).xadd(
            constants.JOB_STREAM,
            {
                "id": job_id,
                "pixels": pixels,
                "filename": filename,
                "enqueued": repr(now),
                "deadline": repr(deadline),
                "top_k": str(top_k),
                "preprocess": preprocess,
                "cache": digest or "",
                **({"explain": "1"} if explain else {}),
            },
        )
        raw = _wait(job_id, deadline)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"queue unavailable: {type(exc).__name__}") from exc
    if raw is None:
        _forget(r, entry_id)
        raise PredictionTimeout("no worker answered in time")
    return _decode(raw)


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PredictionFailed(f"unreadable answer from the worker: {exc}") from None


def _prepare(r: redis.Redis, digest: str | None = None) -> tuple[int, bytes | None]:
    """One round trip: make sure the consumer group exists (at id 0, so jobs queued before any worker starts or
    after Redis lost its data are not skipped; BUSYGROUP is the normal case), read the queue depth and, given a
    request digest, look the answer up in the response cache. Returns (depth, cached answer or None)."""
    pipe = r.pipeline(transaction=False)
    pipe.xgroup_create(constants.JOB_STREAM, constants.CONSUMER_GROUP, id="0", mkstream=True)
    pipe.xlen(constants.JOB_STREAM)
    if digest:
        # EVAL, not a registered script: in a pipeline redis-py would send SCRIPT EXISTS first, one more round trip
        # per request; Redis keeps the compiled script by its hash, so only the ~0.7 KB of text is sent again.
        pipe.eval(
            response_cache.LOOKUP_LUA,
            0,
            constants.HEARTBEATS_KEY,
            repr(time.time() - settings.HEARTBEAT_TTL_S),
            constants.WORKER_KEY_PREFIX,
            constants.CACHE_KEY_PREFIX,
            digest,
        )
    created, depth, *lookup = pipe.execute(raise_on_error=False)
    if isinstance(created, redis.ResponseError) and "BUSYGROUP" not in str(created):
        raise created
    for reply in (depth, *lookup):
        if isinstance(reply, Exception):
            raise reply
    cached = None
    if lookup:
        outcome = lookup[0][0].decode()
        metrics.count_cache(outcome)
        cached = lookup[0][1] if outcome == "hit" else None
    return int(depth), cached


def _wait(job_id: str, deadline: float) -> bytes | None:
    """BLPOP the result key for the time left before the deadline; None when it passes."""
    remaining = deadline - time.time()
    if remaining <= 0:
        return None
    # Redis reads the timeout in milliseconds and treats 0 as "forever": never send less than 1 ms.
    popped = client(blocking=True).blpop([constants.result_key(job_id)], timeout=max(round(remaining, 3), 0.001))
    return None if popped is None else popped[1]


def _forget(r: redis.Redis, entry_id: bytes) -> None:
    """Best effort: delete a job nobody waits for any more, so it stops counting against the queue depth."""
    try:
        r.xdel(constants.JOB_STREAM, entry_id)
    except redis.RedisError:
        log.warning("could not delete expired job %s", entry_id)
