"""Keeps the jobs a worker holds from looking abandoned: a thread refreshing their pending-entry idle time.

claim_stale (in every worker) takes over entries idle longer than CLAIM_IDLE_MS. A live worker whose batch
outlasts that (big BATCH_SIZE, long BATCH_WAIT_MS, big images, a starved CPU) would otherwise lose it: two
workers compute it, both answer, and the delivery count rises until an innocent job is dead-lettered.
A dedicated thread rather than the heartbeat's: its period follows CLAIM_IDLE_MS, and a worker driven step
by step (tests) has no heartbeat.
"""

from __future__ import annotations

import logging
import threading

import redis

from job_queue import JobQueue
from settings import lease_period_s

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Every lease_period_s(cfg) — at most CLAIM_IDLE_MS/3, so a live holder refreshes each entry at least
    twice more before anyone may take it — calls queue.refresh_leases() while the queue holds jobs."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.period_s = lease_period_s(queue.cfg)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failing = False

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.queue.refresh_leases()
                if self._failing:
                    log.info("lease refresh restored")
                self._failing = False
            except redis.RedisError as exc:  # the worker loop sees the outage too and handles it
                if not self._failing:
                    log.warning("lease refresh failed: %s", exc)
                self._failing = True
            except Exception:  # never let the thread die silently: a dead keeper means stolen batches
                log.exception("lease refresh failed unexpectedly")

    def start(self) -> None:
        """Start the thread (idempotent; a stopped keeper is not restarted)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name=f"lease-{self.queue.name}", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop refreshing; jobs still held will then be reclaimed after CLAIM_IDLE_MS, as a dead worker's."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread:
            thread.join(timeout=5)
