"""The CPU quota a container gives this process, from cgroup v2 (`cpu.max`) or v1 (`cpu.cfs_quota_us`).

`docker run --cpus 1` (compose `cpus: 1`) leaves every host core visible to `os.sched_getaffinity` but lets the
container run only one core's worth of time; threads sized from the visible cores would fight over that quota.
Both hierarchies are read at the cgroup mount root, which is the container's own cgroup inside a container.
"""

from __future__ import annotations

import math
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v1 mounts the cpu controller alone or co-mounted with cpuacct, depending on the distribution.
V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def v2_quota(root: Path) -> float | None:
    """Cores allowed by `cpu.max` ("QUOTA PERIOD" or "max PERIOD"); None when unlimited or absent."""
    text = _read(root / "cpu.max")
    if not text:
        return None
    fields = text.split()
    try:
        if fields[0] == "max":
            return None
        quota, period = int(fields[0]), int(fields[1]) if len(fields) > 1 else 100_000
    except (ValueError, IndexError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def v1_quota(root: Path) -> float | None:
    """Cores allowed by `cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota -1: unlimited); None when absent."""
    for name in V1_CPU_DIRS:
        quota, period = _read(root / name / "cpu.cfs_quota_us"), _read(root / name / "cpu.cfs_period_us")
        if quota is None or period is None:
            continue
        try:
            q, p = int(quota), int(period)
        except ValueError:
            return None
        return q / p if q > 0 and p > 0 else None
    return None


def cpu_quota(root: Path | None = None) -> float | None:
    """Cores' worth of CPU time this cgroup may use (e.g. 1.5), or None when no quota is set."""
    root = CGROUP_ROOT if root is None else root
    return v2_quota(root) if (root / "cpu.max").exists() else v1_quota(root)


def quota_cores(visible: int, root: Path | None = None) -> int:
    """Whole cores to size thread pools for: the visible cores, capped by the quota (at least one).

    A fractional quota rounds down (1.5 cores → 1 thread) so threads never outnumber the time they get.
    """
    quota = cpu_quota(root)
    cores = visible if quota is None else min(visible, math.floor(quota))
    return max(1, cores)
