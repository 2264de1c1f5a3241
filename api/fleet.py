"""Which workers are alive, read from their heartbeats; shared by /ready, /metrics and the inference routes.

`ready_versions()` is what every route that queues a job or describes the model reads as the versions being served:
served_version() of each live, ready worker, from one reading of the heartbeats that a process reuses for
READING_TTL_S. `require_ready()` is the one check an inference makes before queueing a job.
"""

import threading
import time
from typing import Any, NamedTuple

import redis

from errors import BrokerUnavailable, NoWorker
from resnet_common import heartbeats, protocol
from resnet_common.repository_layout import version_number
import settings

READING_TTL_S = 1.0  # how long one process reuses its reading of the heartbeats
# ... when it found no ready worker: a worker that becomes ready (a start, a restart, a heartbeat that was late) is
# served within this, and a reading taken at an unlucky moment refuses requests for no longer than this.
EMPTY_READING_TTL_S = 0.1

STATUS_FIELDS = (
    "pid",
    "host",
    "model",
    "variant",
    "runtime",
    "model_version",
    "model_sha256",
    "ready",
    "batch_size",
    "threads",
    "classes",
)


class Served(NamedTuple):
    """What the ready workers of one version report: their runtimes, and how many classes they answer."""

    runtimes: tuple[str, ...]  # RUNTIME of each, sorted; a worker that reports none runs protocol.DEFAULT_RUNTIME
    classes: int | None  # None when none reports it (the model's class index names them; conversion/class_names.py)


def live_workers(r: redis.Redis, with_metrics: bool = False, with_repository: bool = False) -> list[dict[str, Any]]:
    """Workers whose heartbeat is younger than HEARTBEAT_TTL_S, with the status fields of their hash
    (`repository_versions`: the versions each one sees in its model repository, with `with_repository`)."""
    fields = (
        STATUS_FIELDS + (("metrics",) if with_metrics else ()) + (("repository_versions",) if with_repository else ())
    )
    workers = []
    for name, values in heartbeats.live_status(r, settings.HEARTBEAT_TTL_S, fields):
        info: dict[str, Any] = {"name": name}
        for field, value in zip(fields, values or [None] * len(fields)):  # status unknown: listed, not ready
            info[field] = value.decode("utf-8", "replace") if value is not None else None
        info["ready"] = info.get("ready") == "1"
        workers.append(info)
    return workers


def version_order(version: str) -> tuple[int, int, str]:
    """Sort key of model versions: numbers in numeric order, then anything else by name."""
    number = version_number(version)
    return (0, number, "") if number is not None else (1, 0, version)


def served_version(worker: dict[str, Any], unversioned: str = protocol.DEFAULT_VERSION) -> str:
    """The model version a worker serves. One serving a MODEL_DIR outside a repository counts as `unversioned`: by
    default protocol.DEFAULT_VERSION, the version its jobs' stream and the protocol's routes use."""
    return worker.get("model_version") or unversioned


def served_versions(workers: list[dict[str, Any]], unversioned: str = protocol.DEFAULT_VERSION) -> list[str]:
    """The model versions the ready ones among `workers` serve (served_version), ascending: one entry while the
    fleet agrees, two during a rolling switch."""
    return list(served_models(workers, unversioned))


def served_models(workers: list[dict[str, Any]], unversioned: str = protocol.DEFAULT_VERSION) -> dict[str, Served]:
    """Each version in served_versions → what its ready workers report (Served)."""
    runtimes: dict[str, set[str]] = {}
    classes: dict[str, int] = {}
    for worker in workers:
        if worker["ready"]:
            version = served_version(worker, unversioned)
            runtimes.setdefault(version, set()).add(worker.get("runtime") or protocol.DEFAULT_RUNTIME)
            if str(worker.get("classes") or "").isdigit():
                classes[version] = int(worker["classes"])
    return {
        version: Served(tuple(sorted(runtimes[version])), classes.get(version))
        for version in sorted(runtimes, key=version_order)
    }


_lock = threading.Lock()
_reading: tuple[float, dict[str, Served]] = (0.0, {})
_refreshing = False  # a thread of this process is reading the heartbeats


def ready_models(r: redis.Redis, now: float | None = None) -> dict[str, Served]:
    """served_models of the live workers, read from the heartbeats at most once per READING_TTL_S per process
    (EMPTY_READING_TTL_S while the reading found none).

    One thread reads when the reading expires; the others get the expired reading meanwhile instead of all reading
    at once (a process's threads would otherwise read together every second), unless it found no ready worker:
    then each reads, rather than refuse its request on an old "none"."""
    global _reading, _refreshing
    now = time.monotonic() if now is None else now
    with _lock:
        read_at, served = _reading
        if read_at and now - read_at < (READING_TTL_S if served else EMPTY_READING_TTL_S):
            return served
        if _refreshing and served:
            return served
        _refreshing = True
    fresh = None
    try:
        fresh = served_models(live_workers(r))
        return fresh
    finally:
        with _lock:
            _refreshing = False
            if fresh is not None and now >= _reading[0]:  # a reading that began later and ended sooner stays
                _reading = (now, fresh)


def ready_versions(r: redis.Redis, now: float | None = None) -> tuple[str, ...]:
    """Versions that at least one live, ready worker serves, ascending (ready_models); () when none."""
    return tuple(ready_models(r, now))


def forget_reading() -> None:
    """Read the heartbeats again on the next call (tests: a change of the fleet otherwise shows within a second)."""
    global _reading
    with _lock:
        _reading = (0.0, {})


def require_ready(r: redis.Redis, queueing: bool = False) -> tuple[str, ...]:
    """ready_versions, or NoWorker (503 + Retry-After at once, not a 504 at the deadline) when no worker is ready.

    For a request about to queue a job (`queueing`) two cases queue it instead and give (): a pool that scales from
    zero (SCALE_FROM_ZERO), whose first worker the queued job wakes; and heartbeats Redis cannot read (a key of ours
    holding another type, until a worker moves it aside), which prove nothing either way."""
    try:
        versions = ready_versions(r)
    except redis.RedisError as exc:
        if queueing and isinstance(exc, redis.ResponseError):
            return ()
        raise BrokerUnavailable(f"queue unavailable: {type(exc).__name__}") from exc
    if versions or (queueing and settings.SCALE_FROM_ZERO):
        return versions
    raise NoWorker("no worker is ready to answer; retry later")
