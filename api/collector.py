"""Scrape-time view of the whole service, read from Redis: queue depth, live workers and their own metrics.

Workers publish their Prometheus text in `ml:worker:<name>` (field `metrics`); families of the same name are
merged with a `worker` label so the exposition stays valid. If Redis is down the scrape still answers with
`ml_redis_up 0`.
"""

import logging

import redis
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from resnet_common import protocol
import fleet
import job_client

log = logging.getLogger(__name__)


def collect(reserved: set[str] = frozenset(), merge_workers: bool = True) -> list[Metric]:
    """Service-level families; `reserved` names (the API's own) are never overwritten by a worker's; the
    workers' own families only with `merge_workers` (off when Prometheus scrapes the workers directly)."""
    up = GaugeMetricFamily("ml_redis_up", "1 if Redis answered during this scrape")
    try:
        r = job_client.client()
        workers = fleet.live_workers(r, with_metrics=merge_workers)
        pipe = r.pipeline(transaction=False)
        pipe.xlen(protocol.DEADLETTER_STREAM)
        streams = job_streams(workers)
        for stream in streams:
            pipe.xlen(stream)
        dead, *depths = stream_lengths([protocol.DEADLETTER_STREAM, *streams], pipe.execute(raise_on_error=False))
    except redis.RedisError as exc:
        log.warning("metrics scrape without Redis: %s", exc)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    families = [
        up,
        GaugeMetricFamily(
            "ml_queue_depth",
            "Jobs not yet answered: in the shared stream and in the streams of the versions served now",
            value=sum(depths),
        ),
        GaugeMetricFamily("ml_deadletter_depth", "Jobs moved to the dead-letter stream", value=dead),
        GaugeMetricFamily("ml_workers_live", "Workers with a fresh heartbeat", value=len(workers)),
        GaugeMetricFamily(
            "ml_workers_ready",
            "Live workers with the model loaded and warmed",
            value=sum(1 for w in workers if w["ready"]),
        ),
        model_versions(workers),
    ]
    if not merge_workers:
        return families
    taken = set(reserved) | {f.name for f in families}
    return families + merge_worker_metrics(workers, taken)


def stream_lengths(keys: list[str], replies: list) -> list[int]:
    """The XLEN replies of `keys`; one that failed (a key of ours holding another type of value) counts 0 and is
    logged: one bad key must not turn the whole scrape into "Redis down"."""
    for key, reply in zip(keys, replies):
        if isinstance(reply, Exception):
            log.warning("metrics scrape: %s is not a stream (%s); counted as empty", key, reply)
    return [0 if isinstance(reply, Exception) else int(reply) for reply in replies]


def job_streams(workers: list[dict]) -> list[str]:
    """The shared job stream and the stream of each version a ready worker serves (requests that named it). A
    stream of a version nobody serves holds no job for long: the API deletes them and answers 503."""
    return [protocol.JOB_STREAM] + [protocol.version_stream(v) for v in fleet.served_versions(workers)]


def model_versions(workers: list[dict]) -> GaugeMetricFamily:
    """ml_model_version_info{model, version, variant, sha256} = how many ready workers serve it (two series during a
    rolling switch, one once it is over)."""
    family = GaugeMetricFamily(
        "ml_model_version_info",
        "Ready workers serving each model version (version: the repository folder; sha256: of its ONNX file)",
        labels=["model", "version", "variant", "sha256"],
    )
    counts: dict[tuple[str, str, str, str], int] = {}
    for w in workers:
        if w["ready"]:
            key = (
                w.get("model") or "",
                w.get("model_version") or "",
                w.get("variant") or "",
                w.get("model_sha256") or "",
            )
            counts[key] = counts.get(key, 0) + 1
    for key, count in sorted(counts.items()):
        family.add_metric(list(key), count)
    return family


def merge_worker_metrics(workers: list[dict], taken: set[str]) -> list[Metric]:
    """Parse each worker's exposition text and merge same-named families, adding a `worker` label."""
    merged: dict[str, Metric] = {}
    for worker in workers:
        text = worker.get("metrics")
        if not text:
            continue
        try:
            parsed = list(text_string_to_metric_families(text))
        except Exception as exc:  # a worker's bad text must not break the scrape
            log.warning("unparsable metrics from worker %s: %s", worker["name"], exc)
            continue
        for family in parsed:
            if family.name in taken:
                continue
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            elif target.type != family.type:
                log.warning(
                    "worker %s: metric %s has type %s, expected %s",
                    worker["name"],
                    family.name,
                    family.type,
                    target.type,
                )
                continue
            for sample in family.samples:
                labels = dict(sample.labels)
                labels.setdefault("worker", worker["name"])
                target.samples.append(sample._replace(labels=labels, timestamp=None))
    return list(merged.values())
