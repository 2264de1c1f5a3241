"""Bounded decode memory against the real stack: a burst of small PNGs that each decode to 6000 × 6000 pixels."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import psutil

from testkit import post_photo
from testkit.source_addresses import session as client_session

SIDE = 6000
BURST = 16
GROWTH_LIMIT_MB = 800


def big_flat_png(side: int = SIDE) -> bytes:
    """A valid RGB PNG of side × side grey pixels: ~136 KiB on the wire, 108 MB of pixels once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * (3 * side)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def stack_rss_mb(stack) -> float:
    """Resident memory of every process of the stack (redis, the model service and its workers, gunicorn, nginx)."""
    total = 0
    for pid in stack.program_pids():
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def test_burst_of_huge_pngs_stays_within_the_memory_bound(make_stack):
    stack = make_stack(workers=1)
    assert post_photo(stack.url).status_code == 200  # everything warmed up
    png = big_flat_png()
    assert len(png) < 200 * 1024
    baseline = stack_rss_mb(stack)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], stack_rss_mb(stack))
            time.sleep(0.02)

    def send(i: int) -> int:
        with client_session(i) as http:  # each upload from its own 127.0.x.y, as BURST clients would send them
            response = http.post(stack.url + "/predict", files={"file": (f"big{i}.png", png, "image/png")}, timeout=60)
        return response.status_code

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with ThreadPoolExecutor(BURST) as pool:
            statuses = list(pool.map(send, range(BURST)))
    finally:
        done.set()
        sampler.join(5)
    growth = peak[0] - baseline
    assert all(s == 200 or 400 <= s < 500 or s == 503 for s in statuses), statuses
    assert statuses.count(200) >= 1, statuses  # the budget admits such images, it does not refuse them all
    assert growth <= GROWTH_LIMIT_MB, f"stack grew by {growth:.0f} MB (statuses {statuses})"
    assert post_photo(stack.url).status_code == 200  # and it still serves
