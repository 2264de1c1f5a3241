"""Talk to Redis for the API: lazily built connection pools, backpressure, cache lookup, XADD a job, BLPOP its result.

Two pools: commands use short socket timeouts (Redis down → fail in well under a second when refused, at most
REDIS_SOCKET_TIMEOUT_S when unreachable); the blocking BLPOP gets a socket timeout just above the request
timeout so a silent network partition still cannot hold a request past its deadline. The enqueue (XADD) uses a
client that never retries: a retried XADD whose first attempt reached Redis would queue the job twice.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from resnet_common import key_types, protocol
import metrics
from resnet_common import redis_conn
import response_cache
import safe_json
import settings
from errors import BrokerUnavailable, PredictionFailed, PredictionTimeout, QueueFull, VersionGone

log = logging.getLogger(__name__)
SERVED_CHECK_S = 1.0  # a job only some workers may compute: how often its wait checks that one of them is left

_lock = threading.Lock()
_clients: dict[tuple, redis.Redis] = {}


def client(blocking: bool = False, retry: bool = True) -> redis.Redis:
    """The shared client (and its pool) for the current settings and kind; rebuilt only if the settings change
    (tests) — never at import time. Thread-safe: each command borrows a pooled connection."""
    timeout = settings.REDIS_SOCKET_TIMEOUT_S
    socket_timeout = settings.REQUEST_TIMEOUT_S + timeout if blocking else timeout
    key = redis_conn.connection_key(settings) + (timeout, socket_timeout, blocking, retry)
    with _lock:
        r = _clients.get(key)
        if r is None:
            r = _clients[key] = redis_conn.make_client(
                settings,
                socket_connect_timeout=timeout,
                socket_timeout=socket_timeout,
                # One immediate retry heals a pooled socket Redis closed; none for BLPOP (it would outlive the
                # deadline), none for the enqueue (a retried XADD could queue the job twice).
                retry=Retry(NoBackoff(), 1 if retry and not blocking else 0),
                health_check_interval=0,
            )
        return r


_refusal_logged = False  # why_unqueueable logged Redis refusing to move the job stream aside


def why_unqueueable(r: redis.Redis) -> str | None:
    """None when Redis answers and the shared job stream is a stream (or not created yet); else the reason. One
    round trip (TYPE), for the readiness routes. The key holding another type of value (a hand edit) fails every
    XADD: it is moved aside here as a worker would (key_types.move_aside, kept for a human), since with the workers
    scaled to zero and the replicas out of service while not ready, nothing else would. Where Redis refuses the
    move, the replica is not ready until a human fixes the key."""
    global _refusal_logged
    wrong = key_types.wrong_types(r, [protocol.JOB_STREAM], "stream")
    if not wrong:
        _refusal_logged = False
        return None
    try:
        key_types.move_aside(r, protocol.JOB_STREAM, "stream")
        _refusal_logged = False
        return None
    except redis.ResponseError as exc:
        if not _refusal_logged:  # once per fault and process, not once per probe
            log.warning("%s holds another type of value and could not be moved aside: %s", protocol.JOB_STREAM, exc)
            _refusal_logged = True
    return f"{protocol.JOB_STREAM} holds a {wrong[protocol.JOB_STREAM]}, not the job stream: no request can be queued"


def submit(
    pixels: bytes,
    filename: str,
    top_k: int,
    deadline: float,
    preprocess: str = "keras",
    digest: str | None = None,
    explain: bool = False,
    request_id: str = "",
) -> dict[str, Any]:
    """Answer from the response cache when `digest` (response_cache.request_digest) is given and cached, else
    enqueue one job (the decoded 224×224×3 uint8 pixels) and wait for its result dict until `deadline` (unix
    time); typed errors otherwise. A cached answer has "cached": true. `explain` adds the job field explain="1"
    (the worker then answers with a heatmap too); `request_id` is the job's `rid`, which the worker logs."""
    r = client()
    try:
        depth, [cached] = _prepare(r, [digest], protocol.JOB_STREAM)
        answer = _cached_answer(cached) if cached is not None else None
        if answer is not None:
            return answer | {"cached": True}
        if depth >= settings.MAX_QUEUE_DEPTH:
            raise QueueFull(f"queue is full ({depth} jobs waiting); retry later")
        job_id = uuid.uuid4().hex
        now = time.time()
        entry_id = client(retry=False).xadd(
            protocol.JOB_STREAM,
            {
                "id": job_id,
                "pixels": pixels,
                "filename": filename,
                "enqueued": repr(now),
                "deadline": repr(deadline),
                "top_k": str(top_k),
                "preprocess": preprocess,
                "cache": digest or "",
                "rid": request_id,
                **({"explain": "1"} if explain else {}),
            },
        )
        raw = _wait(job_id, deadline)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"queue unavailable: {type(exc).__name__}") from exc
    if raw is None:
        _forget(r, protocol.JOB_STREAM, [entry_id])
        raise PredictionTimeout("no worker answered in time")
    return _decode(raw)


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        return safe_json.loads(raw)
    except ValueError as exc:
        raise PredictionFailed(f"unreadable answer from the worker: {exc}") from None


def _cached_answer(raw: bytes) -> dict[str, Any] | None:
    """A cached entry that has the shape of a worker's successful answer, or None: anyone who could write the key
    (a forged or corrupt entry) gets a cache miss, counted as "invalid", never a 500 or a made-up answer."""
    try:
        value = safe_json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        value = None
    if _is_answer(value):
        metrics.count_cache("hit")
        return value
    metrics.count_cache("invalid")
    log.warning("ignored an unreadable response cache entry (%d bytes)", len(raw))
    return None


def _is_answer(value: Any) -> bool:
    if not isinstance(value, dict) or value.get("ok") is not True or not isinstance(value.get("prediction"), str):
        return False
    score, top_k = value.get("score"), value.get("top_k", [])
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not isinstance(top_k, list):
        return False
    if "probs" in value and not isinstance(value["probs"], str):  # an Open Inference Protocol answer's base64
        return False
    heatmap = value.get("heatmap")
    if heatmap is not None and not (isinstance(heatmap, list) and all(isinstance(row, list) for row in heatmap)):
        return False
    return all(
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], (int, float))
        and not isinstance(pair[1], bool)
        for pair in top_k
    )


def _queue_lookup(pipe: redis.client.Pipeline, digest: str, cutoff: str) -> None:
    """Queue one response-cache lookup (response_cache.LOOKUP_LUA) on `pipe`: replies [outcome, entry or nil].
    EVAL, not a registered script: in a pipeline redis-py would send SCRIPT EXISTS first, one more round trip per
    request; Redis keeps the compiled script by its hash, so only the ~0.7 KB of text is sent again."""
    pipe.eval(
        response_cache.LOOKUP_LUA,
        0,
        protocol.HEARTBEATS_KEY,
        cutoff,
        protocol.WORKER_KEY_PREFIX,
        protocol.CACHE_KEY_PREFIX,
        digest,
    )


def _wait(job_id: str, deadline: float, served: Callable[[], bool] | None = None) -> bytes | None:
    """BLPOP the result key for the time left before the deadline; None when it passes. With `served`, the wait
    is cut into SERVED_CHECK_S slices and VersionGone raised as soon as `served()` says nobody can answer."""
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            return None
        wait = remaining if served is None else min(remaining, SERVED_CHECK_S)
        # Redis reads the timeout in milliseconds and treats 0 as "forever": never send less than 1 ms.
        popped = client(blocking=True).blpop([protocol.result_key(job_id)], timeout=max(round(wait, 3), 0.001))
        if popped is not None:
            return popped[1]
        if served is not None and not served():
            raise VersionGone("no worker serves the version this request named any more; retry")


def _forget(r: redis.Redis, stream: str, entry_ids: list[bytes]) -> None:
    """Best effort: delete jobs nobody waits for any more, so they stop counting against the queue depth."""
    try:
        if entry_ids:
            r.xdel(stream, *entry_ids)
    except redis.RedisError:
        log.warning("could not delete %d abandoned job(s) of %s", len(entry_ids), stream)


def submit_many(
    jobs: list[dict[str, Any]],
    digests: list[str | None],
    deadline: float,
    stream: str = protocol.JOB_STREAM,
    served: Callable[[], bool] | None = None,
    request_id: str = "",
) -> list[dict[str, Any]]:
    """Several jobs of one request (an Open Inference Protocol batch), in order: one round trip for the group
    check, the queue depth and every cache lookup; one pipelined XADD of the misses (never retried); then each
    result until `deadline`. Admission counts jobs, not requests: QueueFull when depth + misses would exceed
    MAX_QUEUE_DEPTH, so a batch of N is admitted only when all N fit. A cached answer carries `lookup_ms`, its
    share of the lookup's round trip.

    `stream` is a version's stream (protocol.version_stream) for a request that named one, with `served` telling
    whether a worker still serves that version: when none does, the jobs left are deleted and VersionGone raised
    within SERVED_CHECK_S, not at the deadline. Every job's `rid` is `request_id`."""
    r = client()
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    entry_ids: list[bytes] = []
    try:
        started = time.perf_counter()
        depth, cached = _prepare(r, digests, stream)
        lookup_ms = (time.perf_counter() - started) * 1000 / max(1, sum(raw is not None for raw in cached))
        for i, raw in enumerate(cached):
            answer = _cached_answer(raw) if raw is not None else None
            if answer is not None:
                results[i] = answer | {"cached": True, "lookup_ms": lookup_ms}
        misses = [i for i, res in enumerate(results) if res is None]
        if misses and depth + len(misses) > settings.MAX_QUEUE_DEPTH:
            raise QueueFull(f"queue is full ({depth} jobs waiting, {len(misses)} more asked); retry later")
        now = time.time()
        pipe = client(retry=False).pipeline(transaction=False)
        ids = {}
        for i in misses:
            ids[i] = uuid.uuid4().hex
            fields = {
                "id": ids[i],
                "enqueued": repr(now),
                "deadline": repr(deadline),
                "cache": digests[i] or "",
                "rid": request_id,
            }
            pipe.xadd(stream, fields | jobs[i])
        entry_ids = pipe.execute() if misses else []
        for n, i in enumerate(misses):
            try:
                raw = _wait(ids[i], deadline, served)
            except VersionGone:
                _forget(r, stream, entry_ids[n:])
                raise
            if raw is None:
                _forget(r, stream, entry_ids[n:])
                raise PredictionTimeout("no worker answered in time")
            results[i] = _decode(raw)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"queue unavailable: {type(exc).__name__}") from exc
    return results  # type: ignore[return-value]


def _prepare(r: redis.Redis, digests: list[str | None], stream: str) -> tuple[int, list[bytes | None]]:
    """One round trip: make sure the consumer group on `stream` exists (at id 0, so jobs queued before any worker
    starts or after Redis lost its data are not skipped; BUSYGROUP is the normal case), read the queue depth (the
    shared stream's, plus a version stream's) and look each given request digest up in the response cache.
    Returns (depth, cached entry or None per digest)."""
    pipe = r.pipeline(transaction=False)
    pipe.xgroup_create(stream, protocol.CONSUMER_GROUP, id="0", mkstream=True)
    streams = list(dict.fromkeys([protocol.JOB_STREAM, stream]))
    for name in streams:
        pipe.xlen(name)
    cutoff = repr(time.time() - settings.HEARTBEAT_TTL_S)
    for digest in digests:
        if digest:
            _queue_lookup(pipe, digest, cutoff)
    created, *replies = pipe.execute(raise_on_error=False)
    if isinstance(created, redis.ResponseError) and "BUSYGROUP" not in str(created):
        raise created
    lengths, lookups = replies[: len(streams)], replies[len(streams) :]
    for length in lengths:
        if isinstance(length, Exception):
            raise length
    answers = iter(lookups)
    cached: list[bytes | None] = []
    for digest in digests:
        if not digest:
            cached.append(None)
            continue
        reply = next(answers)
        if isinstance(reply, Exception):  # a key the lookup reads holds another type of value: a miss, not a 503
            metrics.count_cache("unreadable")
            _warn_lookup_failed(reply)
            cached.append(None)
            continue
        outcome = reply[0].decode()
        if outcome != "hit":  # a hit is counted once its entry proved to be an answer (_cached_answer)
            metrics.count_cache(outcome)
        cached.append(reply[1] if outcome == "hit" else None)
    return int(sum(lengths)), cached


_lookup_warned = 0.0  # when the last failed cache lookup was logged (time.monotonic)


def _warn_lookup_failed(exc: Exception) -> None:
    """Log a failed response-cache lookup at most once a minute per process: it fails for every request until the
    key is fixed, and each of them is still served."""
    global _lookup_warned
    now = time.monotonic()
    if now - _lookup_warned >= 60:
        _lookup_warned = now
        log.warning("response cache lookup failed, requests go to the workers meanwhile: %s", exc)
