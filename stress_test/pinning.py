"""Pin processes to cores, every thread of them: how a benchmark gives one part of the stack cores of its own.

The affinity of a Linux task is per thread, and a thread inherits its creator's: pinning a process's threads as
they are now also places the threads and processes it starts later.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator


def threads_of(pid: int) -> list[int]:
    """The thread ids of a live process (none when it is gone)."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return []


def pin(pids: Iterable[int], cores: set[int]) -> int:
    """Restrict every thread of these processes to `cores`; returns how many threads were pinned. Two passes: a
    thread started during the first (by one not yet pinned) is caught by the second."""
    pids, pinned = list(pids), set()
    for _ in range(2):
        for pid in pids:
            for tid in threads_of(pid):
                try:
                    os.sched_setaffinity(tid, cores)
                except ProcessLookupError:  # ended since it was listed
                    continue
                pinned.add(tid)
    return len(pinned)


def cpu_list(cores: Iterable[int]) -> str:
    """A set of cores as taskset's -c takes it ("0,1")."""
    return ",".join(str(c) for c in sorted(cores))


@contextlib.contextmanager
def this_thread_on(cores: set[int]) -> Iterator[None]:
    """Run the calling thread, and every thread and process it starts meanwhile, on `cores`; restored after."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
