"""The worker loop of one process: reclaim → read a batch → drop / dead-letter / decode → one run → answer.

`step()` does one iteration (tests drive it directly, like arq's burst mode); `run()` repeats it until the
stop event is set, surviving Redis outages with a bounded exponential back-off.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any
from collections.abc import Callable

import numpy as np
import redis

from classifier import Classifier, Prediction
from resnet_common.protocol import ErrorKind
from constants import Outcome
from job_queue import JobQueue
from jobs import Job
from lease import LeaseKeeper
from metrics import WorkerMetrics
from model_watch import ModelWatch
from resnet_common.preprocess import (
    PIXELS_SHAPE,
    InvalidImage,
    normalize_pixels,
    pixels_from_bytes,
    tensor_from_bytes,
)
from settings import BACKOFF_MAX_S, BACKOFF_START_S, Settings

UNSUPPORTED_IMAGE_JOB = "jobs with an encoded `image` are not decoded by workers; send the decoded `pixels`"

log = logging.getLogger(__name__)
PRUNE_INTERVAL_S = 60.0


class Worker:
    def __init__(
        self,
        cfg: Settings,
        classifier: Classifier,
        queue: JobQueue,
        metrics: WorkerMetrics,
        watch: ModelWatch | None = None,
        on_switch: Callable[[Classifier], None] | None = None,
    ) -> None:
        self.cfg, self.classifier, self.queue, self.metrics = cfg, classifier, queue, metrics
        self.watch, self.on_switch = watch, on_switch  # a rolling model switch (model_watch.py), between batches
        self.name = queue.name
        self.lease = LeaseKeeper(queue)  # refreshes the jobs in hand so no other worker takes them over
        self.block_ms = max(1, int(min(1000.0, cfg.CLAIM_INTERVAL_S * 1000)))
        self._next_claim = self._next_prune = 0.0
        self._group_ready = False
        self.jobs = self.batches = 0
        self.last_loop = time.monotonic()  # the liveness probe's clock: the loop came round (health_server)
        self._since_summary = (time.monotonic(), 0)
        self._stop: threading.Event | None = None  # the running step's stop event
        # Every batch's input, reused: one batch at a time per worker, and nothing keeps it once the run returned.
        self._batch = np.empty((cfg.BATCH_SIZE, *PIXELS_SHAPE), dtype=np.float32)

    # one iteration -------------------------------------------------------------------------------------
    def step(self, stop: threading.Event | None = None, block: bool = True) -> int:
        """Take up to BATCH_SIZE jobs (stale ones first), finish them all; returns how many were taken."""
        if not self._group_ready:
            self.queue.ensure_group()
            self._group_ready = True
        self._stop = stop
        self.lease.start()
        self.switch_model()
        self.queue.serve(self._version())  # read the stream of the version that computes this batch
        try:
            return self._step(stop, block)
        finally:
            # Everything taken was answered, dropped or dead-lettered — or an error interrupted the batch: then
            # stop refreshing its jobs so that they are reclaimed (by any worker) after CLAIM_IDLE_MS.
            self.queue.release()

    def switch_model(self) -> None:
        """Between two batches: serve the version the watch has built and warmed, if any, and free the old one."""
        if self.watch is None:
            return
        taken = self.watch.take(self.classifier)
        if taken is None:
            return
        self.classifier = taken[0]  # the watch logs the switch's figures once the old session's memory is back
        if self.on_switch:
            self.on_switch(self.classifier)

    def _step(self, stop: threading.Event | None, block: bool) -> int:
        now, size = time.monotonic(), self.cfg.BATCH_SIZE
        jobs: list[Job] = []
        stopping, isolate = bool(stop and stop.is_set()), False
        if now >= self._next_claim and not stopping:
            self._next_claim = now + self.cfg.CLAIM_INTERVAL_S
            jobs, isolate = self.queue.claim_stale(size)
            if jobs:
                self.metrics.reclaimed(len(jobs))
                log.info(
                    "reclaimed %d stale job(s)%s: %s",
                    len(jobs),
                    " (a suspect, run alone)" if isolate else "",
                    [(j.id, j.deliveries) for j in jobs],
                )
            if isolate:
                self._next_claim = 0.0  # more suspects may wait: look again on the next step
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL_S
            if self.queue.prune_consumers():
                log.info("removed idle consumers that had nothing pending")
        if len(jobs) < size and not isolate:
            if stopping:  # only what this worker already holds
                jobs += self.queue.take_carried(size - len(jobs))
            else:
                jobs += self.queue.read_batch(size - len(jobs), self.block_ms if block and not jobs else None, stop)
        if jobs:
            self.process(jobs)
        return len(jobs)

    def process(self, jobs: list[Job]) -> None:
        now = time.time()
        fresh = []
        for job in jobs:
            if job.deliveries > self.cfg.MAX_DELIVERIES:
                reason = f"delivered {job.deliveries} times (limit {self.cfg.MAX_DELIVERIES})"
                log.error("job %s %s: dead-lettered", job.named, reason)
                self.queue.dead_letter(job, reason, self._result(job, None, ErrorKind.DEAD_LETTER, reason))
                self.metrics.job(Outcome.DEAD_LETTER)
            elif job.expired(now):
                self.queue.drop([job])
                self.metrics.job(Outcome.EXPIRED)
                log.info("job %s expired %.2f s ago: dropped", job.named, now - job.deadline)
            else:
                fresh.append(job)
        if fresh:
            self._classify(fresh)
        self._log_progress(len(jobs))

    def _classify(self, jobs: list[Job]) -> None:
        answers: list[tuple[Job, dict[str, Any]]] = []
        batch_jobs = []
        for job in jobs:
            self.metrics.queue_wait(job.picked - job.enqueued)
            started = time.perf_counter()
            try:
                self._input(job, self._batch[len(batch_jobs)])  # a step takes at most BATCH_SIZE jobs
                batch_jobs.append(job)
            except Exception as exc:  # InvalidImage, or anything else Pillow throws on hostile data
                message = str(exc) if isinstance(exc, InvalidImage) else f"could not decode image: {exc}"
                log.info("job %s: invalid image: %s", job.named, message)
                answers.append((job, self._result(job, None, ErrorKind.INVALID_IMAGE, message)))
                self.metrics.job(Outcome.INVALID_IMAGE)
            self.metrics.preprocess(time.perf_counter() - started)
        if batch_jobs:
            started, cpu_started = time.perf_counter(), time.process_time()
            arrays = self._batch[: len(batch_jobs)]
            predictions = self.classifier.predict_batch(
                arrays, [j.top_k for j in batch_jobs], [j.explain for j in batch_jobs]
            )
            seconds = time.perf_counter() - started
            self.metrics.batch(len(arrays), seconds, time.process_time() - cpu_started)
            self.batches += 1
            log.debug("batch of %d in %.1f ms", len(arrays), seconds * 1000)
            for job, pred in zip(batch_jobs, predictions):
                answers.append((job, self._result(job, pred, batch_size=len(arrays), inference_s=seconds)))
                self.metrics.job(Outcome.OK if pred.ok else Outcome.INFERENCE_FAILED)
                if not pred.ok:
                    self.metrics.error(pred.error.value)
                    log.warning("job %s: %s: %s", job.named, pred.error.value, pred.message)
        handle = self.classifier.handle
        self.queue.answer(answers, getattr(handle, "sha256", "") if handle is not None else "", self._read_ahead())

    def _read_ahead(self) -> int:
        """How many jobs the answer's transaction may read for the next batch (READ_AHEAD): none while stopping (the
        jobs in hand are the last) or with another model version ready to switch to (the next batch may serve
        another stream)."""
        stopping = self._stop is not None and self._stop.is_set()
        if not self.cfg.READ_AHEAD or stopping or (self.watch is not None and self.watch.switch_ready):
            return 0
        return self.cfg.BATCH_SIZE

    def _version(self) -> str:
        handle = self.classifier.handle
        return getattr(handle, "version", "") if handle is not None else ""

    def _input(self, job: Job, out: np.ndarray) -> None:
        """Write the model input of a job into `out`: a preprocessed float32 `input` as it is; the API's decoded
        pixels, normalised. An old-style job carrying the encoded upload (`image`) is refused: decoding it here
        would bypass the API's decode budget and scan limits."""
        if job.tensor:
            np.copyto(out, tensor_from_bytes(job.tensor))
        elif not job.pixels and job.image:
            raise InvalidImage(UNSUPPORTED_IMAGE_JOB)
        else:
            normalize_pixels(pixels_from_bytes(job.pixels), out)

    def _result(
        self,
        job: Job,
        pred: Prediction | None,
        error: ErrorKind | None = None,
        message: str = "",
        batch_size: int = 0,
        inference_s: float = 0.0,
    ) -> dict[str, Any]:
        """The result JSON of the protocol: ok with prediction/score/top_k, or an error kind and message."""
        if pred is not None and not pred.ok:
            error, message = pred.error, pred.message
        ok = pred is not None and pred.ok
        heatmap = {"heatmap": pred.heatmap if ok else None} if job.explain else {}
        if job.probs and ok and pred.probabilities is not None:  # 4000 bytes of float32, base64 in the JSON
            heatmap["probs"] = base64.b64encode(pred.probabilities.astype("<f4").tobytes()).decode("ascii")
        return {
            "id": job.id,
            "ok": ok,
            "prediction": pred.top_k[0][0] if ok else None,
            "score": pred.top_k[0][1] if ok else None,
            "top_k": [list(p) for p in pred.top_k] if ok else [],
            "error": error.value if error else None,
            "message": message,
            "worker": self.name,
            "model_version": self._version(),
            "batch_size": batch_size,
            "queued_ms": round((job.picked - job.enqueued) * 1000, 1),
            "inference_ms": round(inference_s * 1000, 1),
            **heatmap,
        }

    def _log_progress(self, n: int) -> None:
        self.jobs += n
        since, jobs_then = self._since_summary
        elapsed = time.monotonic() - since
        if elapsed >= self.cfg.SUMMARY_INTERVAL_S:
            log.info(
                "%d jobs in the last %.0f s (%.2f/s); %d jobs, %d batches in total",
                self.jobs - jobs_then,
                elapsed,
                (self.jobs - jobs_then) / elapsed,
                self.jobs,
                self.batches,
            )
            self._since_summary = (time.monotonic(), self.jobs)

    # the loop ------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set; the batch in hand, and the jobs read beyond it, are finished and acknowledged
        before returning."""
        try:
            self._run(stop)
            self._finish_carried(stop)
        finally:
            self.close()

    def _finish_carried(self, stop: threading.Event) -> None:
        """Answer the jobs read beyond the last batch (XREADGROUP's COUNT applies per stream) before leaving:
        left behind, they would wait CLAIM_IDLE_MS for another worker to reclaim them. Redis gone: left to that."""
        while self.queue.carried:
            try:
                self.step(stop, block=False)
            except Exception as exc:  # Redis gone, or a batch that failed: the jobs are still pending, reclaimable
                log.warning("%d job(s) read beyond the last batch left to be reclaimed: %s", self.queue.carried, exc)
                return

    def close(self) -> None:
        """Stop the lease thread (a worker is not reused after this)."""
        self.lease.stop()

    def _run(self, stop: threading.Event) -> None:
        backoff, outage = BACKOFF_START_S, False
        while not stop.is_set():
            self.last_loop = time.monotonic()
            try:
                self.step(stop)
                if outage:
                    log.info("Redis is back")
                backoff, outage = BACKOFF_START_S, False
                continue
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not outage:
                    log.warning("Redis unreachable (%s); retrying with back-off", exc)
                outage, self._group_ready = True, False
                self.metrics.error("redis")
            except Exception:
                log.exception("unexpected error in the worker loop; its jobs will be reclaimed")
                self.metrics.error("loop")
            stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
