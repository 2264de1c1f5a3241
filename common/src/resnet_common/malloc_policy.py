"""How glibc's malloc keeps and returns memory: the API sets it once per process, before its request threads start
(apply); both services hand freed heap back to the OS after a large release (trim).

- Blocks of MMAP_THRESHOLD and more (decoded images) are mapped on their own and go back to the OS when freed.
  Left to glibc, the first freed image raises its threshold to that image's block size, and later decode blocks
  come from heaps that are never given back (the API grew by 2.1 GB under 16 concurrent 6000×6000 PNGs).
- Smaller blocks (a request's body, its pixels or tensor, the command that queues them) come from at most ARENA_MAX
  heaps, each keeping up to TRIM_THRESHOLD of free memory at its top for the next request. At glibc's default of
  128 KiB each request's buffers went back to the OS and were faulted in and zeroed again by the kernel: ~670
  page faults per Open Inference Protocol FP32 request. The memory kept is at most ARENA_MAX × TRIM_THRESHOLD.
- trim() hands back whatever the heaps hold free: the API after a large decode (decode_budget), a worker after it
  drops a replaced model session (model_watch).

Another C library than glibc: nothing is changed.
"""

from __future__ import annotations

import ctypes
import functools
import logging

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 8 << 20
ARENA_MAX = 2  # request threads mostly run Python under the GIL: they seldom allocate at the same moment


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def apply() -> None:
    """Set the thresholds above (idempotent)."""
    libc = _glibc()
    if libc is None:
        log.debug("not glibc: malloc left as it is")
        return
    for parameter, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_ARENA_MAX, ARENA_MAX),
    ):
        if libc.mallopt(parameter, value) != 1:
            log.warning("mallopt(%d, %d) failed: that parameter is left as it is", parameter, value)


def trim() -> None:
    """Hand the memory the heaps hold free back to the OS (malloc_trim): glibc keeps memory freed in a thread's
    heap for that heap, so concurrent large decodes would each leave their last image's heap behind, and RSS would
    not show a replaced model session gone."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
