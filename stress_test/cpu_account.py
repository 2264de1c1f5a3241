"""CPU-milliseconds per answered image for each part of the stack, from /proc over a measured window.

A process's CPU is utime + stime of /proc/<pid>/stat (all its threads), read when the window opens and closes.
Each process belongs to the part of its nearest ancestor among the `roots` the harness names (nginx, gunicorn,
Redis, the model service and each worker process, the load generator); what the machine's other processes used
(/proc/stat) is reported beside them as `other_on_machine`, so a shared machine's noise is visible. Inference and
the worker's other work are split with the workers' own counter ml_worker_inference_cpu_seconds (process CPU time
around each inference run, ONNX Runtime or OpenVINO, pushed to the API's /metrics). Processes that exit inside the
window are not seen.

    with CpuWindow(roots) as window:
        ...load...
    window.account(answered=images, inference_cpu_s=seconds)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
Snapshot = dict[int, tuple[int, float]]  # pid -> (parent pid, CPU seconds so far)


def parse_stat(text: str) -> tuple[int, float]:
    """(parent pid, utime + stime in seconds) from the text of /proc/<pid>/stat (the name may hold spaces and ')')."""
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def snapshot(proc: Path = Path("/proc")) -> Snapshot:
    """Every process's parent and CPU time now."""
    out: Snapshot = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                pass  # gone meanwhile, or a kernel thread with an odd line
    return out


def machine_busy_s(text: str | None = None) -> float:
    """CPU seconds every core spent busy since boot (the `cpu` line of /proc/stat, minus idle and iowait)."""
    text = text if text is not None else Path("/proc/stat").read_text()
    ticks = [int(x) for x in text.splitlines()[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK  # user..steal; guest time is inside user


def owner(pid: int, snap: Snapshot, roots: Mapping[int, str]) -> str | None:
    """The part of the nearest ancestor (or the process itself) named in `roots`; None when outside the stack."""
    seen = set()
    while pid in snap and pid not in seen:
        if pid in roots:
            return roots[pid]
        seen.add(pid)
        pid = snap[pid][0]
    return roots.get(pid)


def cpu_by_part(before: Snapshot, after: Snapshot, roots: Mapping[int, str]) -> dict[str, float]:
    """CPU seconds each part used between the snapshots (a process started meanwhile counts from zero)."""
    out = {part: 0.0 for part in roots.values()}
    for pid, (_, cpu) in after.items():
        part = owner(pid, after, roots)
        if part is not None:
            out[part] += max(0.0, cpu - before.get(pid, (0, 0.0))[1])
    return out


def per_image(
    cpu_s: Mapping[str, float], answered: int, inference_cpu_s: float | None = None, worker_part: str = "worker"
) -> dict[str, float | None]:
    """CPU-ms per answered image of each part; the worker part split into `inference` and `worker_outside_inference`
    when the inference CPU is known."""
    parts = dict(cpu_s)
    if inference_cpu_s is not None and worker_part in parts:
        worker = parts.pop(worker_part)
        parts["inference"] = min(inference_cpu_s, worker)
        parts["worker_outside_inference"] = max(0.0, worker - inference_cpu_s)
    return {k: round(1000 * v / answered, 2) if answered else None for k, v in parts.items()}


class CpuWindow:
    """Snapshots /proc when entered and when closed; `roots` maps a pid to its part (descendants included)."""

    def __init__(self, roots: Mapping[int, str]) -> None:
        self.roots = dict(roots)
        self.before: Snapshot = {}
        self.after: Snapshot = {}

    def __enter__(self) -> CpuWindow:
        self.before, self.busy0, self.t0 = snapshot(), machine_busy_s(), time.monotonic()
        return self

    def close(self) -> None:
        self.after, self.busy1, self.t1 = snapshot(), machine_busy_s(), time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cpu_s(self) -> dict[str, float]:
        return cpu_by_part(self.before, self.after, self.roots)

    @property
    def wall_s(self) -> float:
        return self.t1 - self.t0

    def account(
        self, answered: int, inference_cpu_s: float | None = None, idle: CpuWindow | None = None
    ) -> dict[str, Any]:
        """The window's CPU per part (ms per answered image), the cores they used and the machine's rest. With an
        `idle` window of the same stack without load, each part's background rate (heartbeats, metrics pushes,
        lease refreshes: fixed per second, not per image) is also given, and `cpu_ms_per_image_net` leaves it out."""
        cpu = self.cpu_s()
        wall = self.wall_s
        other = max(0.0, (self.busy1 - self.busy0) - sum(cpu.values()))
        total = per_image(cpu, answered, inference_cpu_s)
        service = sum(v for k, v in total.items() if k != "load_generator" and v is not None)
        extra: dict[str, Any] = {}
        if idle is not None and idle.wall_s > 0:
            idle_rate = {k: v / idle.wall_s for k, v in idle.cpu_s().items()}
            net = {k: max(0.0, v - idle_rate.get(k, 0.0) * wall) for k, v in cpu.items()}
            extra = {
                "idle_cores": {k: round(v, 4) for k, v in idle_rate.items()},
                "cpu_ms_per_image_net": per_image(net, answered, inference_cpu_s),
            }
        return {
            "window_s": round(wall, 2),
            "answered": answered,
            "cpu_ms_per_image": total,
            **extra,
            "service_cpu_ms_per_image": round(service, 2) if answered else None,
            "cores_used": {k: round(v / wall, 3) for k, v in cpu.items()} if wall > 0 else {},
            "other_on_machine_cores": round(other / wall, 3) if wall > 0 else None,
            "inference_from": "ml_worker_inference_cpu_seconds (worker process CPU around each inference run)"
            if inference_cpu_s is not None
            else "not split (no inference CPU counter)",
        }


def format_account(acc: dict[str, Any]) -> str:
    """One line: ms of CPU per answered image by part, largest first."""
    net = acc.get("cpu_ms_per_image_net", {})
    items = sorted(((v, k) for k, v in acc["cpu_ms_per_image"].items() if v is not None), reverse=True)
    parts = ", ".join(
        f"{k} {v:.1f}" + (f" ({net[k]:.1f} net of idle)" if net.get(k) is not None else "") for v, k in items
    )
    return (
        f"CPU ms per answered image ({acc['answered']} images, {acc['window_s']} s): {parts}; "
        f"other processes on the machine {acc['other_on_machine_cores']} cores"
    )
