"""Prometheus metrics of one worker process, in a registry of its own; every sample has a `worker` label.

The text exposition goes into the heartbeat hash (field `metrics`) so the API's /metrics shows all workers;
with METRICS_PORT set a worker also serves it directly.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)

from constants import Outcome

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
SWITCH_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WorkerMetrics:
    def __init__(self, worker: str) -> None:
        disable_created_metrics()  # process-wide: the *_created series would only double the pushed text
        self.worker = worker
        self.registry = CollectorRegistry(auto_describe=True)
        r, w = self.registry, ["worker"]
        self._jobs = Counter("ml_worker_jobs", "Jobs finished, by outcome", ["worker", "outcome"], registry=r)
        self._errors = Counter("ml_worker_errors", "Errors, by kind", ["worker", "kind"], registry=r)
        self._batch = Histogram(
            "ml_worker_batch_size", "Images per ONNX Runtime run", w, buckets=BATCH_BUCKETS, registry=r
        )
        self._inference = Histogram(
            "ml_worker_inference_seconds",
            "Time of one ONNX Runtime run (a batch)",
            w,
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self._queue_wait = Histogram(
            "ml_worker_queue_wait_seconds",
            "Time from enqueue to pick-up by a worker",
            w,
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self._preprocess = Histogram(
            "ml_worker_preprocess_seconds",
            "Decode and preprocess time per image",
            w,
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self._inference_cpu = Counter(
            "ml_worker_inference_cpu_seconds",
            "CPU time of the worker process (all its threads) during ONNX Runtime runs",
            w,
            registry=r,
        )
        self._reclaimed = Counter("ml_worker_reclaimed", "Jobs taken over from a dead consumer", w, registry=r)
        self._switch = Histogram(
            "ml_worker_model_switch_seconds",
            "A rolling model switch: from seeing the new version to serving it (build and warm-up included)",
            w,
            buckets=SWITCH_BUCKETS,
            registry=r,
        )
        self._switch_rss = Gauge(
            "ml_worker_model_switch_rss_bytes",
            "Resident memory around the last model switch: before, during (two sessions), after",
            ["worker", "phase"],
            registry=r,
        )
        for outcome in Outcome:  # export zeros, so rates exist before the first event
            self._jobs.labels(worker, outcome.value)

    def job(self, outcome: Outcome, n: int = 1) -> None:
        self._jobs.labels(self.worker, outcome.value).inc(n)

    def error(self, kind: str) -> None:
        self._errors.labels(self.worker, kind).inc()

    def key_moved_aside(self) -> None:
        """A key of ours held another type of value and was moved to ml:set-aside: (the log names it)."""
        self.error("key_moved_aside")

    def batch(self, size: int, seconds: float, cpu_seconds: float = 0.0) -> None:
        self._batch.labels(self.worker).observe(size)
        self._inference.labels(self.worker).observe(seconds)
        self._inference_cpu.labels(self.worker).inc(max(0.0, cpu_seconds))

    def queue_wait(self, seconds: float) -> None:
        self._queue_wait.labels(self.worker).observe(max(0.0, seconds))

    def preprocess(self, seconds: float) -> None:
        self._preprocess.labels(self.worker).observe(seconds)

    def reclaimed(self, n: int) -> None:
        self._reclaimed.labels(self.worker).inc(n)

    def model_switch(self, report) -> None:
        """One model_watch.SwitchReport."""
        self._switch.labels(self.worker).observe(report.seconds)
        for phase in ("before", "during", "after"):
            self._switch_rss.labels(self.worker, phase).set(getattr(report, f"rss_{phase}"))

    def count(self, outcome: Outcome) -> float:
        return (
            self.registry.get_sample_value("ml_worker_jobs_total", {"worker": self.worker, "outcome": outcome.value})
            or 0.0
        )

    def text(self) -> str:
        return generate_latest(self.registry).decode("utf-8")

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
