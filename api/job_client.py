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
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from resnet_common import protocol
import metrics
from resnet_common import redis_conn
import job_enqueue
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
    fields = {"pixels": pixels, "filename": filename, "top_k": str(top_k), "preprocess": preprocess}
    [result] = submit_many([fields | ({"explain": "1"} if explain else {})], [digest], deadline)
    return result


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PredictionFailed(f"unreadable answer from the worker: {exc}") from None


def _cached_answer(raw: bytes) -> dict[str, Any] | None:
    """A cached entry that has the shape of a worker's successful answer, or None: anyone who could write the key
    (a forged or corrupt entry) gets a cache miss, counted as "invalid", never a 500 or a made-up answer."""
    try:
        value = json.loads(raw)
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
) -> list[dict[str, Any]]:
    """The jobs of one request (an Open Inference Protocol batch, or /predict's one), in order: one round trip
    (job_enqueue, never retried) checks the group, reads the queue depth, looks every digest up in the response
    cache and queues the misses; then each result is awaited until `deadline`. Admission counts jobs, not
    requests: QueueFull when depth + misses would exceed MAX_QUEUE_DEPTH, so a batch of N is admitted only when
    all N fit. A cached answer carries `lookup_ms`, its share of that round trip.

    `stream` is a version's stream (protocol.version_stream) for a request that named one, with `served` telling
    whether a worker still serves that version: when none does, the jobs left are deleted and VersionGone raised
    within SERVED_CHECK_S, not at the deadline."""
    r = client()
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    try:
        now = time.time()
        ids = [uuid.uuid4().hex for _ in jobs]
        fields = [
            {"id": job_id, "enqueued": repr(now), "deadline": repr(deadline), "cache": digest or ""} | job
            for job_id, digest, job in zip(ids, digests, jobs)
        ]
        entry_of = _enqueue(stream, fields, digests, results)
        waiting = sorted(entry_of)
        entry_ids = [entry_of[i] for i in waiting]
        for n, i in enumerate(waiting):
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


def _enqueue(
    stream: str, fields: list[dict[str, Any]], digests: list[str | None], results: list[dict[str, Any] | None]
) -> dict[int, bytes]:
    """Fill `results` with the cached answers and queue the other jobs (job_enqueue: one round trip); returns
    the stream entry of each queued job by its index. A cache entry that is not an answer (forged or corrupt) is
    queued in a second round trip, without a lookup. QueueFull when the jobs to queue do not fit."""
    entry_of: dict[int, bytes] = {}
    todo = list(range(len(fields)))
    while todo:
        started = time.perf_counter()
        sent = job_enqueue.enqueue(
            client(retry=False),
            stream,
            [fields[i] for i in todo],
            [digests[i] for i in todo],
            settings.MAX_QUEUE_DEPTH,
            settings.HEARTBEAT_TTL_S,
        )
        hits = sum(outcome == "hit" for outcome in sent.outcomes)
        lookup_ms = (time.perf_counter() - started) * 1000 / max(1, hits)
        unreadable = []
        for i, outcome, raw, entry_id in zip(todo, sent.outcomes, sent.cached, sent.entry_ids):
            if raw is not None:
                answer = _cached_answer(raw)
                if answer is None:
                    unreadable.append(i)
                else:
                    results[i] = answer | {"cached": True, "lookup_ms": lookup_ms}
            elif outcome in ("miss", "no_model"):  # a hit is counted once its entry proved to be an answer
                metrics.count_cache(outcome)
            if entry_id is not None:
                entry_of[i] = entry_id
        if not sent.queued:
            _forget(client(), stream, list(entry_of.values()))  # queued by a first round: all or none
            misses = len(todo) - hits
            raise QueueFull(f"queue is full ({sent.depth} jobs waiting, {misses} more asked); retry later")
        todo, digests = unreadable, [None] * len(digests)
    return entry_of
