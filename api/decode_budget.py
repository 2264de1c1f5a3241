"""A per-process memory budget for image decoding: concurrent decodes share DECODE_MEMORY_MB.

Each decode reserves what Pillow will hold for it (preprocess.decode_memory: size × bytes per pixel of its mode,
plus the RGB copy) before any pixel is decoded. An image that alone exceeds the budget is refused (400); one
that does not fit next to the decodes in progress waits up to DECODE_WAIT_S, then gets 503 + Retry-After.

Pillow also keeps up to DECODE_CACHE_MB of freed image memory for the next decode (keep_freed): memory handed back
to the OS must be page-faulted in and zeroed again by the kernel, for every page of every image.
The parsing of a large Open Inference Protocol JSON document reserves its worst case here too (v2_json_budget). With
G gunicorn processes, decoding and parsing add at most G × (DECODE_MEMORY_MB + DECODE_CACHE_MB) to the API's memory,
whatever arrives.
"""

import threading
import time

from resnet_common import malloc_policy

TRIM_AT_BYTES = 16 * 2**20  # a decode this large gives its freed heap back before the next one starts


class BudgetExceeded(Exception):
    """The image alone needs more than the whole budget."""


class BudgetBusy(Exception):
    """Other decodes hold the budget and did not free enough of it in time."""


class DecodeBudget:
    """A weighted semaphore in bytes (threads of one process)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int, timeout: float) -> None:
        if nbytes > self.capacity:
            raise BudgetExceeded(
                f"decoding needs {nbytes / 2**20:.0f} MiB, over the {self.capacity / 2**20:.0f} MiB decode budget"
            )
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.used + nbytes > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    if self.used + nbytes > self.capacity:
                        raise BudgetBusy("too many large images are being decoded; retry later")
            self.used += nbytes

    def release(self, nbytes: int) -> None:
        """Give back a reservation; after a large decode, first hand its freed memory back to the OS."""
        if nbytes >= TRIM_AT_BYTES:
            malloc_policy.trim()
        with self._cond:
            self.used = max(0, self.used - nbytes)
            self._cond.notify_all()


def wait_s(limit_s: float, deadline: float | None) -> float:
    """How long a reservation may wait for the budget: `limit_s` (DECODE_WAIT_S), or what is left before the
    request's `deadline` (unix time) when that comes first."""
    return limit_s if deadline is None else max(0.0, min(limit_s, deadline - time.time()))


_budgets: dict[int, DecodeBudget] = {}
_lock = threading.Lock()


def budget(capacity_mb: int) -> DecodeBudget:
    """The process's budget for this capacity (one per value, so a changed setting in tests gets a fresh one)."""
    with _lock:
        found = _budgets.get(capacity_mb)
        if found is None:
            found = _budgets[capacity_mb] = DecodeBudget(capacity_mb * 2**20)
        return found


def keep_freed(cache_mb: int) -> None:
    """Let Pillow keep up to `cache_mb` of freed image blocks (it allocates images in blocks of at most 16 MiB) for
    the next decode to reuse; 0: every block goes back to the OS when its image is freed."""
    from PIL import Image

    blocks = max(0, cache_mb) * 2**20 // Image.core.get_block_size()
    if Image.core.get_blocks_max() != blocks:
        Image.core.set_blocks_max(blocks)
