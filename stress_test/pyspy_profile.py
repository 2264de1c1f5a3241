"""Sample the service's processes with py-spy (PyPI) during a load run: where the CPU goes, by function.

`Recorder(pids, seconds, out_dir).start()` runs `py-spy record --format raw` (collapsed stacks) on each pid in the
background; `.summary()` waits and returns the functions holding the most samples (leaf frames, top 12), per
process group. Without py-spy (or ptrace permission) the summary says so; the load figures are unaffected.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

PYSPY = Path(sys.executable).with_name("py-spy")


class Recorder:
    def __init__(self, pids: dict[str, list[int]], seconds: float, out_dir: Path, rate: int = 50) -> None:
        self.pids, self.seconds, self.out_dir, self.rate = pids, seconds, out_dir, rate
        self.procs: list[tuple[str, Path, subprocess.Popen]] = []

    def start(self) -> Recorder:
        binary = str(PYSPY) if PYSPY.exists() else shutil.which("py-spy")
        if not binary:
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
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

    def summary(self, top: int = 12) -> dict[str, list[tuple[str, float]]] | str:
        if not self.procs:
            return "py-spy not installed: pip install py-spy (requirements-dev.txt)"
        leaves: dict[str, Counter] = {}
        for group, out, proc in self.procs:
            try:
                proc.wait(self.seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if not out.exists():
                continue
            counter = leaves.setdefault(group, Counter())
            for line in out.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if stack and count.isdigit():
                    counter[stack.split(";")[-1]] += int(count)
        result = {}
        for group, counter in leaves.items():
            total = sum(counter.values()) or 1
            result[group] = [(frame[:120], round(n / total, 3)) for frame, n in counter.most_common(top)]
        return result or "py-spy recorded nothing (ptrace not permitted?)"
