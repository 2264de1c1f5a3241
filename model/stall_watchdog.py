"""Ends a worker process whose loop is stuck, so that its supervisor starts a fresh one.

A loop stuck in a native call (a wedged inference) keeps its other threads going: the lease thread goes on
refreshing the batch the loop holds, so no other worker reclaims it and its requests can only time out, for as long
as the process lives. In a cluster the liveness probe (/healthz, health_server) has the container restarted; under
supervisord or compose nothing polls it. This thread applies the same test, the loop not coming round for
HEALTH_STALL_S, and ends the process: its leases lapse, another worker reclaims the batch after CLAIM_IDLE_MS, and the
model service's supervisor starts a new worker (a worker that exits non-zero after it was ready is restarted).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_STALLED = 70  # EX_SOFTWARE


class StallWatchdog:
    """Every `period_s`, asks `alive()` ((alive, seconds since the loop came round), health_server.Probe.alive); the
    first time it is not, calls `on_stall(seconds)` and stops."""

    def __init__(
        self, alive: Callable[[], tuple[bool, float]], on_stall: Callable[[float], None], period_s: float
    ) -> None:
        self.alive, self.on_stall, self.period_s = alive, on_stall, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stall-watchdog", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            ok, age = self.alive()
            if not ok:
                self.on_stall(age)
                return

    def start(self) -> StallWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the watchdog to end (stopped, or done after its one call); True if it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


def end_process(age: float) -> None:
    """The worker process's `on_stall`: say why, then end at once (the stuck thread cannot be interrupted)."""
    log.error(
        "worker loop stuck for %.0f s (more than HEALTH_STALL_S): ending this process so that it is replaced and "
        "the jobs it holds are reclaimed",
        age,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_STALLED)
