"""Sample the service's processes with py-spy (PyPI) during a load run: where their busy threads stand, by function.

`Recorder(pids, seconds, out_dir).start()` runs `py-spy record --format raw` (collapsed stacks) on each pid in the
background; `.summary()` waits and returns, per process group, the share of samples whose thread was busy and the
functions holding the most of those (leaf frames, top 12). Without py-spy (or ptrace permission) the summary says
so; the load figures are unaffected.

py-spy is meant to leave idle threads out, but it cannot always tell which Python thread is which OS thread, and
then it samples blocked threads as if they ran: a gunicorn worker's idle pool threads and every request's wait for
its answer filled a third to half of the API's samples. `leaf_profile` leaves those samples out by their leaf frame
(WAITS): a function whose only work there is a blocking call into C. A thread waiting for the GIL as a C call
returns still counts as busy at that call, so the shares say where threads stood, not CPU time (the workloads' CPU
account, cpu_account.py, gives that).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PYSPY = Path(sys.executable).with_name("py-spy")

# (function, file) of leaf frames where a thread waits: a pool thread on its work queue, an event loop in epoll, a
# Condition or Event, a Redis reply not yet sent (BLPOP, XREADGROUP BLOCK, any command's round trip).
WAITS = (
    ("_worker", "concurrent/futures/thread.py"),
    ("select", "selectors.py"),
    ("wait", "threading.py"),
    ("read_from_socket", "redis/_parsers/hiredis.py"),
    ("_read_from_socket", "redis/_parsers/socket.py"),
)
_FRAME = re.compile(r"^(?P<function>\S+) \((?P<file>.+):\d+\)$")


def is_wait(frame: str) -> bool:
    """Whether a py-spy frame ("Class.function (path/file.py:line)") is one of WAITS."""
    match = _FRAME.match(frame)
    if not match:
        return False
    function = match["function"].rpartition(".")[2]
    return any(function == name and match["file"].endswith(file) for name, file in WAITS)


def leaf_profile(lines: Iterable[str], top: int = 12) -> dict[str, Any]:
    """From py-spy's collapsed stacks ("frame;frame;leaf count" per line): the share of busy samples (leaf not one
    of WAITS) and the `top` leaf frames by their share of those."""
    busy_at, waiting = Counter(), 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        if is_wait(leaf):
            waiting += int(count)
        else:
            busy_at[leaf] += int(count)
    busy = sum(busy_at.values())
    return {
        "busy": round(busy / (busy + waiting), 3) if busy + waiting else 0.0,
        "top": [(frame[:120], round(n / busy, 3)) for frame, n in busy_at.most_common(top)],
    }


class Recorder:
    def __init__(self, pids: dict[str, list[int]], seconds: float, out_dir: Path, rate: int = 50) -> None:
        self.pids, self.seconds, self.out_dir, self.rate = pids, seconds, out_dir, rate
        self.procs: list[tuple[str, Path, subprocess.Popen]] = []

    def start(self) -> Recorder:
        binary = str(PYSPY) if PYSPY.exists() else shutil.which("py-spy")
        if not binary:
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.out_dir.glob("*.txt"):  # an earlier run of the same name: the folder holds this one only
            stale.unlink()
        for group, pids in self.pids.items():
            for pid in pids:
                out = self.out_dir / f"{group}-{pid}.txt"
                cmd = [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(self.seconds)),
                    "--rate",
                    str(self.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(out),
                ]
                self.procs.append(
                    (group, out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                )
        return self

    def summary(self, top: int = 12) -> dict[str, dict[str, Any]] | str:
        """Per process group: leaf_profile of all its processes' samples."""
        if not self.procs:
            return "py-spy not installed: pip install py-spy (requirements-dev.txt)"
        lines: dict[str, list[str]] = {}
        for group, out, proc in self.procs:
            try:
                proc.wait(self.seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if out.exists():
                lines.setdefault(group, []).extend(out.read_text(errors="replace").splitlines())
        result = {group: leaf_profile(group_lines, top) for group, group_lines in lines.items()}
        return result or "py-spy recorded nothing (ptrace not permitted?)"
