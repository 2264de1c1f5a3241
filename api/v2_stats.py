"""Triton's statistics extension: cumulative figures per model version of the Open Inference Protocol's inference
requests (`GET /v2/models[/{name}[/versions/{v}]]/stats`), kept as Prometheus counters so that every gunicorn
process adds to the same totals (they are on `/metrics` too) and read back from them.

How the fields map onto this service, where each image of a request is its own job (docs/protocol.md):
- success / fail: requests, with their duration from arrival at nginx to the response;
- inference_count: images computed by the version (cache hits excluded); cache_hit: images answered from the cache;
- queue, compute_input, compute_infer, compute_output: per computed image: the wait in the job queue, the API's
  decoding of it, the inference time of the batch that computed it, and its share of building the response;
- execution_count and batch_stats: batches, counted as each image's share of its batch (1/batch size), so they are
  exact when only these requests fill the batches and fractional shares (rounded) when /predict jobs share them.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

import metrics_server

if TYPE_CHECKING:
    import v2_infer

STAGES = ("queue", "compute_input", "compute_infer", "compute_output")

REQUESTS = Counter(
    "api_v2_requests", "Open Inference Protocol inference requests, by version and outcome", ["version", "outcome"]
)
REQUEST_SECONDS = Counter(
    "api_v2_request_seconds",
    "Their total duration from arrival at nginx, by version and outcome",
    ["version", "outcome"],
)
CACHE_SECONDS = Counter(
    "api_v2_cache_seconds", "Seconds looking up the images answered from the cache, by version", ["version"]
)
IMAGES = Counter(
    "api_v2_images", "Images of those requests, by version: computed, or answered from the cache", ["version", "source"]
)
STAGE_SECONDS = Counter(
    "api_v2_image_stage_seconds", "Per computed image: seconds in each stage (v2_stats.STAGES)", ["version", "stage"]
)
BATCH_SHARES = Counter(
    "api_v2_batch_shares",
    "Computed images' shares of their batches (1/batch size), by version and batch size",
    ["version", "batch_size"],
)
BATCH_SECONDS = Counter(
    "api_v2_batch_seconds",
    "Those shares of the batches' inference seconds, by version and batch size",
    ["version", "batch_size"],
)
LAST_INFERENCE = Gauge(
    "api_v2_last_inference_ms",
    "When the version last answered, ms since the epoch",
    ["version"],
    multiprocess_mode="max",
)


def observe_request(version: str, ok: bool, seconds: float) -> None:
    outcome = "success" if ok else "fail"
    REQUESTS.labels(version=version, outcome=outcome).inc()
    REQUEST_SECONDS.labels(version=version, outcome=outcome).inc(max(0.0, seconds))


def observe_images(answers: v2_infer.Answers, output_seconds: float) -> None:
    """One answered request's images: each result as the worker (or the cache) answered it, the version that
    computed it and the decode of its input; `output_seconds` the building of the response (shared by its computed
    images)."""
    computed = sum(not result.get("cached") for result in answers.results)
    now_ms = time.time() * 1000
    for version in set(answers.versions):
        LAST_INFERENCE.labels(version=version).set(now_ms)
    for result, version, decode_s in zip(answers.results, answers.versions, answers.input_seconds):
        if result.get("cached"):
            IMAGES.labels(version=version, source="cache").inc()
            CACHE_SECONDS.labels(version=version).inc(max(0.0, float(result.get("lookup_ms") or 0.0)) / 1000)
            continue
        batch = max(1, int(result.get("batch_size") or 1))
        inference_s = max(0.0, float(result.get("inference_ms") or 0.0)) / 1000
        IMAGES.labels(version=version, source="computed").inc()
        for stage, seconds in (
            ("queue", float(result.get("queued_ms") or 0.0) / 1000),
            ("compute_input", decode_s),
            ("compute_infer", inference_s),
            ("compute_output", output_seconds / computed),
        ):
            STAGE_SECONDS.labels(version=version, stage=stage).inc(max(0.0, seconds))
        BATCH_SHARES.labels(version=version, batch_size=str(batch)).inc(1 / batch)
        BATCH_SECONDS.labels(version=version, batch_size=str(batch)).inc(inference_s / batch)


def model_stats(name: str, versions: tuple[str, ...]) -> list[dict[str, Any]]:
    """Triton's `$model_stat` of each version, from the counters of every API process."""
    totals = _totals()

    def value(family: str, **labels: str) -> float:
        return totals[family].get(frozenset(labels.items()), 0.0)

    def duration(count: float, seconds: float) -> dict[str, int]:
        # Half up, not to even: a total that grew by one batch always shows one more.
        return {"count": math.floor(count + 0.5), "ns": math.floor(seconds * 1e9 + 0.5)}

    stats = []
    for v in versions:
        computed = value("api_v2_images", version=v, source="computed")
        requests = {
            outcome: duration(
                value("api_v2_requests", version=v, outcome=outcome),
                value("api_v2_request_seconds", version=v, outcome=outcome),
            )
            for outcome in ("success", "fail")
        }
        stages = {
            stage: duration(computed, value("api_v2_image_stage_seconds", version=v, stage=stage)) for stage in STAGES
        }
        hits = value("api_v2_images", version=v, source="cache")
        sizes = sorted(
            int(dict(labels)["batch_size"]) for labels in totals["api_v2_batch_shares"] if dict(labels)["version"] == v
        )
        batches = [
            {
                "batch_size": size,
                "compute_infer": duration(
                    value("api_v2_batch_shares", version=v, batch_size=str(size)),
                    value("api_v2_batch_seconds", version=v, batch_size=str(size)),
                ),
            }
            for size in sizes
        ]
        stats.append(
            {
                "name": name,
                "version": v,
                "last_inference": round(value("api_v2_last_inference_ms", version=v)),
                "inference_count": round(computed),
                "execution_count": sum(b["compute_infer"]["count"] for b in batches),
                "inference_stats": {
                    **requests,
                    **stages,
                    "cache_hit": duration(hits, value("api_v2_cache_seconds", version=v)),
                },
                "batch_stats": batches,
            }
        )
    return stats


def _totals() -> dict[str, dict[frozenset, float]]:
    """family name → {labels: value} of this module's families, summed over the processes (the last-inference
    gauge: the latest)."""
    totals: dict[str, dict[frozenset, float]] = defaultdict(lambda: defaultdict(float))
    for family in metrics_server.api_families():
        if not family.name.startswith("api_v2_"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "pid")
            if family.name == "api_v2_last_inference_ms":
                totals[family.name][labels] = max(totals[family.name][labels], sample.value)
            else:
                totals[family.name][labels] += sample.value
    return totals
