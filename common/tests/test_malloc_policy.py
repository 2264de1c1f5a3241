"""The malloc policy the API applies in each process, measured in a fresh interpreter: large blocks go back to the OS
when freed; request-sized ones are kept for the next request instead of being faulted in again for each."""

from __future__ import annotations

import json
import subprocess
import sys

TENSOR_BYTES = 224 * 224 * 3 * 4  # one Open Inference Protocol FP32 image
ROUNDS = 50

PROBE = f"""
import json, os, resource
from resnet_common import malloc_policy
malloc_policy.apply()

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

start = rss()
for _ in range(3):  # large decodes: 16 MiB blocks written and freed
    block = b"\\x01" * (16 << 20)
    del block
kept = rss() - start
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):  # requests: a tensor written and freed each
    tensor = b"\\x01" * {TENSOR_BYTES}
    del tensor
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({{"large_kept": kept, "request_faults": faults}}))
"""


def test_large_blocks_go_back_to_the_os_and_request_buffers_are_reused():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    measured = json.loads(out.stdout)
    assert measured["large_kept"] < 2 << 20  # glibc alone keeps the last 16 MiB block
    pages = TENSOR_BYTES // 4096
    assert measured["request_faults"] < ROUNDS * pages / 10  # with the mmap threshold alone: every page, every round
