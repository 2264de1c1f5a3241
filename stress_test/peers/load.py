"""Closed-loop HTTP load for any of the systems compared: N clients, each from its own loopback address.

Each client thread keeps one keep-alive connection bound to its own source address (testkit/source_addresses.py: 127.0.1.1, 127.0.1.2, …),
sends the next photo with unique bytes (stress_test/unique.py) as soon as the previous answer arrives, and
records completions inside the measured window. How a request looks (multipart, raw body, Open Inference
Protocol JSON) is the system's own `encode`; what counts as a good answer is its `accept`.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from stress_test.unique import unique
from testkit.source_addresses import http_connection

Encode = Callable[[str, bytes], tuple[bytes, str]]  # (file name, image bytes) -> (body, content type)
Accept = Callable[[int, bytes], bool]  # (status, body) -> a good answer?
MAX_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class Target:
    """Where and how to send one image to a system."""

    port: int
    path: str
    encode: Encode
    accept: Accept


def _connect(port: int, client: int, timeout: float) -> http.client.HTTPConnection:
    return http_connection("127.0.0.1", port, client, timeout=timeout)


def _client(target: Target, photos: list, client: int, start: float, stop: float, timeout: float, out: list) -> None:
    conn = _connect(target.port, client, timeout)
    run_id, i = uuid.uuid4().hex[:8], client
    while (t0 := time.monotonic()) < stop:
        name, data = photos[i % len(photos)]
        body, ctype = target.encode(name, unique(data, f"{run_id}-{client}-{i}"))
        i += 1
        retry_after = 0.0
        try:
            conn.request("POST", target.path, body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse()
            payload = resp.read()
            status, ok = resp.status, target.accept(resp.status, payload)
            if status == 503:  # backpressure: wait as told, like a polite client
                retry_after = min(float(resp.getheader("Retry-After") or 1), MAX_RETRY_AFTER_S)
        except (OSError, http.client.HTTPException, ValueError):
            conn.close()
            conn = _connect(target.port, client, timeout)
            status, ok = 0, False
        t1 = time.monotonic()
        if start <= t1 <= stop:
            out.append((t1 - t0, status, ok))
        if retry_after:
            time.sleep(retry_after)
    conn.close()


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU seconds of the live processes a system started: those of session `sid` (its CLI leads
    one) and every descendant of that leader (BentoML's workers lead sessions of their own)."""
    import psutil

    members: dict[int, psutil.Process] = {}
    try:
        members.update({p.pid: p for p in psutil.Process(sid).children(recursive=True)})
    except psutil.Error:
        pass
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                members[proc.pid] = proc
        except (ProcessLookupError, PermissionError):
            continue
    total = 0.0
    for proc in members.values():
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _probe_window(probe: Callable[[], float], start: float, stop: float, out: list) -> None:
    time.sleep(max(0.0, start - time.monotonic()))
    first = probe()
    time.sleep(max(0.0, stop - time.monotonic()))
    out.append(probe() - first)


def completions(
    target: Target,
    photos: list[tuple[str, bytes]],
    clients: int,
    duration: float,
    warmup: float,
    timeout: float = 60,
    probe: Callable[[], float] | None = None,
) -> tuple[list[tuple[float, int, bool]], float | None]:
    """(latency s, status, good answer?) of every request completed inside the measured window, and how much
    `probe()` (e.g. the system's CPU seconds) grew over that window."""
    start = time.monotonic() + warmup
    stop = start + duration
    out: list = []
    probed: list = []
    prober = threading.Thread(target=_probe_window, args=(probe, start, stop, probed), daemon=True)
    if probe is not None:
        prober.start()
    threads = [
        threading.Thread(target=_client, args=(target, photos, c, start, stop, timeout, out), daemon=True)
        for c in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=warmup + duration + timeout + 10)
    if probe is not None:
        prober.join(timeout=max(0.0, stop - time.monotonic()) + 30)
    return list(out), (probed[0] if probed else None)


def run(target: Target, photos: list[tuple[str, bytes]], clients: int, duration: float, warmup: float) -> dict:
    """Good answers per second inside the window, their p50/p99 latency, and the other answers (errors)."""
    return summary(clients, duration, completions(target, photos, clients, duration, warmup)[0])


def summary(clients: int, duration: float, out: list, cpu_s: float | None = None) -> dict:
    """Figures of (latency s, status, ok) completions measured over `duration` seconds (several rounds: summed);
    with the system's CPU seconds over the same window, CPU ms per good answer and cores busy (robust to other
    load on a shared machine, which img/s is not)."""
    ok_ms = np.array([r[0] for r in out if r[2]]) * 1000
    statuses: dict[str, int] = {}
    for _, status, ok in out:
        if not ok:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "clients": clients,
        "duration_s": duration,
        "ok": int(ok_ms.size),
        "img_s": round(ok_ms.size / duration, 2),
        "p50_ms": round(float(np.percentile(ok_ms, 50)), 1) if ok_ms.size else None,
        "p99_ms": round(float(np.percentile(ok_ms, 99)), 1) if ok_ms.size else None,
        "errors": sum(statuses.values()),
        "error_statuses": statuses,
        "cpu_ms_per_img": round(1000 * cpu_s / ok_ms.size, 1) if cpu_s is not None and ok_ms.size else None,
        "cores_busy": round(cpu_s / duration, 2) if cpu_s is not None else None,
    }
