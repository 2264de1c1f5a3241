"""Raw ONNX Runtime throughput for one workers x threads x batch configuration.

Each worker is a process started with multiprocessing "spawn" that builds its own session (ONNX Runtime's advice:
never carry a session across a fork), warms up, waits at a barrier so all workers measure the same window, then
runs batches for a fixed duration and reports its images, elapsed time, per-batch latencies, load time and RSS.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stress_test.machine import busy_seconds


BARRIER_TIMEOUT_S = 120.0


# A configuration and its speed, the first columns of every table of raw runs (results.format_table).
RUN_COLUMNS = [
    ("workers", "W"),
    ("threads", "T"),
    ("batch", "B"),
    ("img_s", "img/s"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
]


@dataclass(frozen=True)
class Config:
    """One point of the grid; spin None means the worker's own rule (spinning off when processes share cores)."""

    model: str
    workers: int
    threads: int
    batch: int
    duration_s: float = 8.0
    warmup_s: float = 2.0
    spin: bool | None = None


def _rss_mb() -> float:
    """Resident set size of this process from /proc (no psutil needed in .venv-convert)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_session(model: str, threads: int, spin: bool):
    """The worker's own session factory (model/session.py), so the benchmark measures exactly what it runs."""
    from stress_test.service_code import service_module

    return service_module("model", "session").open_session(model, threads, spin)


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _worker(cfg: Config, spin: bool, barrier: Any, results: Any, open_model: Any = None) -> None:
    """Body of one spawned process; always puts exactly one dict on the results queue. `open_model(path, threads,
    spin, batch)` replaces ONNX Runtime's session with another runtime's (openvino_runner.open_compiled)."""
    try:
        from stress_test.photos import batch_of

        t0 = time.perf_counter()
        if open_model is None:
            session = make_session(cfg.model, cfg.threads, spin)
        else:
            session = open_model(cfg.model, cfg.threads, spin, cfg.batch)
        load_s = time.perf_counter() - t0
        name = session.get_inputs()[0].name
        outputs = [o.name for o in session.get_outputs()]
        output = ["probabilities"] if "probabilities" in outputs else outputs[:1]
        feed = {name: batch_of(cfg.batch)}
        end = time.perf_counter() + cfg.warmup_s
        session.run(output, feed)
        while time.perf_counter() < end:
            session.run(output, feed)
        barrier.wait(BARRIER_TIMEOUT_S)
        latencies: list[float] = []
        start = time.perf_counter()
        stop = start + cfg.duration_s
        while (now := time.perf_counter()) < stop:
            session.run(output, feed)
            latencies.append(time.perf_counter() - now)
        elapsed = time.perf_counter() - start
        results.put(
            {
                "ok": True,
                "images": len(latencies) * cfg.batch,
                "elapsed_s": elapsed,
                "latencies_s": latencies,
                "load_s": load_s,
                "rss_mb": _rss_mb(),
            }
        )
    except Exception as exc:  # reported to the parent, which fails the configuration with the message
        barrier.abort()
        results.put({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def run(cfg: Config, open_model: Any = None) -> dict[str, Any]:
    """Aggregate images/s (sum over workers) and p50/p95 batch latency for one configuration."""
    spin = cfg.spin if cfg.spin is not None else cfg.workers == 1
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(cfg.workers), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(cfg, spin, barrier, results, open_model), daemon=True)
        for _ in range(cfg.workers)
    ]
    busy0, own0, wall0 = busy_seconds(), _own_seconds(), time.monotonic()
    for p in procs:
        p.start()
    timeout = BARRIER_TIMEOUT_S + cfg.warmup_s + cfg.duration_s + 60
    reports = [results.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    wall = time.monotonic() - wall0
    other_cores = max(0.0, (busy_seconds() - busy0) - (_own_seconds() - own0)) / wall
    failed = [r["error"] for r in reports if not r["ok"]]
    if failed:
        raise RuntimeError(f"{cfg}: {failed[0]}")
    lat_ms = np.array([x for r in reports for x in r["latencies_s"]]) * 1000
    img_s = sum(r["images"] / r["elapsed_s"] for r in reports)
    return {
        "model": Path(cfg.model).name,
        "workers": cfg.workers,
        "threads": cfg.threads,
        "batch": cfg.batch,
        "spin": spin,
        "duration_s": cfg.duration_s,
        "images": sum(r["images"] for r in reports),
        "img_s": round(img_s, 3),
        "batches": int(lat_ms.size),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 2) if lat_ms.size else None,
        "p95_ms": round(float(np.percentile(lat_ms, 95)), 2) if lat_ms.size else None,
        "per_image_ms": round(float(np.median(lat_ms)) / cfg.batch, 2) if lat_ms.size else None,
        "load_s_max": round(max(r["load_s"] for r in reports), 3),
        "rss_mb_max": round(max(r["rss_mb"] for r in reports), 1),
        "other_load_cores": round(other_cores, 2),
    }


def grid(cores: int, workers: list[int], threads: list[int] | None, batches: list[int]) -> list[tuple[int, int, int]]:
    """(workers, threads, batch) with workers x threads <= cores; threads default to every count that fits."""
    out = []
    for w in workers:
        for t in threads or range(1, cores + 1):
            if w * t <= cores:
                out.extend((w, t, b) for b in batches)
    return out
