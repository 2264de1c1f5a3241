"""Tells the API this worker is alive (ml:heartbeats) and what it serves (ml:worker:<name>), from a thread.

A thread, so that a long batch never lets the heartbeat lapse; it also pushes the worker's metrics text.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable

import redis

from resnet_common import key_types, protocol
from settings import Settings

log = logging.getLogger(__name__)
FORGET_AFTER_S = 3600  # members of ml:heartbeats silent this long (dead workers) are removed


class Heartbeat:
    """`beat()` once, or `start()` a daemon thread beating every HEARTBEAT_INTERVAL_S until `stop()`."""

    def __init__(
        self,
        client: redis.Redis,
        cfg: Settings,
        name: str,
        info: dict[str, str],
        metrics_text: Callable[[], str] | None = None,
        on_moved_aside: Callable[[], None] | None = None,
    ) -> None:
        self.r, self.cfg, self.name = client, cfg, name
        self.on_moved_aside = on_moved_aside  # called for each key moved aside (a metric)
        self.info = {"pid": str(os.getpid()), "host": socket.gethostname(), "ready": "0", **info}
        self.metrics_text = metrics_text
        self._stop = threading.Event()
        self._wake = threading.Event()  # set() wakes the loop so a change (ready="1") is seen at once
        self._thread: threading.Thread | None = None
        self._last_metrics = 0.0
        self._failing = False

    def set(self, **fields: str) -> None:
        """Update advertised fields (e.g. ready="1" after warm-up) and send them with an immediate beat."""
        self.info.update(fields)
        self._wake.set()

    def beat(self) -> None:
        now = time.time()
        fields = dict(self.info)
        if self.metrics_text and now - self._last_metrics >= self.cfg.METRICS_PUSH_INTERVAL_S:
            fields["metrics"] = self.metrics_text()
            self._last_metrics = now
        try:
            self._send(now, fields)
        except redis.ResponseError as exc:
            if not key_types.is_wrong_type(exc):
                raise
            self._move_aside_wrong_types()
            self._send(now, fields)  # both keys are now of their type or absent, unless a stray client is quicker

    def _move_aside_wrong_types(self) -> None:
        """Move ml:heartbeats and this worker's status out of the way if they hold another type of value; this beat
        recreates them. Left alone, the EXPIRE of every beat would keep a stray status forever, and a stray
        heartbeats key would leave no live worker to be counted."""
        for key, expected in ((protocol.HEARTBEATS_KEY, "zset"), (protocol.worker_key(self.name), "hash")):
            if key_types.move_aside(self.r, key, expected) and self.on_moved_aside:
                self.on_moved_aside()

    def _send(self, now: float, fields: dict[str, str]) -> None:
        key = protocol.worker_key(self.name)
        (
            self.r.pipeline(transaction=True)
            .zadd(protocol.HEARTBEATS_KEY, {self.name: now})
            .zremrangebyscore(protocol.HEARTBEATS_KEY, "-inf", now - FORGET_AFTER_S)
            .hset(key, mapping=fields)
            .expire(key, math.ceil(self.cfg.HEARTBEAT_TTL_S))  # EXPIRE takes whole seconds
            .execute()
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                if self._failing:
                    log.info("heartbeat restored")
                self._failing = False
            except Exception as exc:  # never end the thread: a worker that stops beating looks dead to the API
                if not self._failing:
                    log.warning("heartbeat failed: %s", exc, exc_info=not isinstance(exc, redis.RedisError))
                self._failing = True
                self._last_metrics = 0.0  # Redis may have lost the hash: push metrics again next time
            self._wake.wait(self.cfg.HEARTBEAT_INTERVAL_S)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self, remove: bool = True) -> None:
        """Stop beating and, on a clean exit, remove this worker's entries at once (not after the TTL)."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
        if remove:
            try:
                self.r.pipeline(transaction=True).zrem(protocol.HEARTBEATS_KEY, self.name).delete(
                    protocol.worker_key(self.name)
                ).execute()
            except redis.RedisError as exc:
                log.warning("could not remove heartbeat: %s", exc)
