"""Which workers are alive, read from their heartbeats; shared by /ready and /metrics."""

from typing import Any

import redis

from resnet_common import heartbeats, protocol
from resnet_common.repository_layout import version_number
import settings

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
)


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
    return list(served_runtimes(workers, unversioned))


def served_runtimes(
    workers: list[dict[str, Any]], unversioned: str = protocol.DEFAULT_VERSION
) -> dict[str, tuple[str, ...]]:
    """Each version in served_versions → the runtimes (RUNTIME) its ready workers report, sorted; a worker that
    reports none runs protocol.DEFAULT_RUNTIME."""
    runtimes: dict[str, set[str]] = {}
    for worker in workers:
        if worker["ready"]:
            version = served_version(worker, unversioned)
            runtimes.setdefault(version, set()).add(worker.get("runtime") or protocol.DEFAULT_RUNTIME)
    return {version: tuple(sorted(runtimes[version])) for version in sorted(runtimes, key=version_order)}
