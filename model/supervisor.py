"""Runs WORKERS worker processes (spawn: no ONNX Runtime state crosses a fork) and forwards SIGTERM/SIGINT.

A worker that crashes after it became ready (non-zero exit, killed by a signal) is restarted; one that fails
before it is ready (no model, bad settings) is a configuration error and stops the whole group instead of
looping.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
from typing import Any
from collections.abc import Callable

log = logging.getLogger(__name__)


def supervise(workers: int, target: Callable[[int, Any], int]) -> int:
    """Start `target(index, ready_event)` in `workers` processes (the target sets the event once serving).

    Returns 0 after a requested stop, 1 when a worker failed before it was ready.
    """
    ctx = multiprocessing.get_context("spawn")
    procs: dict[int, tuple[Any, Any]] = {}
    state = {"stopping": False, "status": 0}

    def start(index: int) -> None:
        ready = ctx.Event()
        proc = ctx.Process(target=target, args=(index, ready), name=f"worker-{index}")
        proc.start()
        procs[index] = (proc, ready)
        log.info("started worker %d (pid %d)", index, proc.pid)

    def stop_all(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        state["stopping"] = True
        for proc, _ in procs.values():
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for index in range(workers):
        start(index)
    while procs:
        by_sentinel = {proc.sentinel: index for index, (proc, _) in procs.items()}
        for sentinel in multiprocessing.connection.wait(list(by_sentinel)):
            index = by_sentinel[sentinel]
            proc, ready = procs.pop(index)
            proc.join()
            if state["stopping"] or proc.exitcode == 0:
                log.info("worker %d (pid %d) exited with %s", index, proc.pid, proc.exitcode)
            elif not ready.is_set():
                log.error("worker %d failed at start (exit %s); stopping all", index, proc.exitcode)
                state["status"] = 1
                stop_all()
            else:
                log.warning("worker %d (pid %d) died (exit %s); restarting it", index, proc.pid, proc.exitcode)
                start(index)
    return state["status"]
