"""A light closed-loop /predict client: N threads, each sending the next photo as soon as its answer arrives.

Used for the end-to-end saturation figure (max sustained /predict throughput) and for the exact single-user
latency (Locust rounds its percentiles). Keep-alive connections, each client from its own loopback address
(testkit/source_addresses.py), unique bytes per request (unique.py) so no cache answers one: the client costs
little CPU next to the service it measures on the same cores.

  python -m stress_test.closed_loop --url http://127.0.0.1:5000 --concurrency 16 --duration 20
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import uuid
from urllib.parse import urlsplit

import numpy as np

from stress_test.photos import photo_bytes
from testkit.source_addresses import http_connection
from stress_test.unique import unique as tagged


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _client(
    url: str, photos: list, start: float, stop: float, offset: int, out: list, timeout: float, out_all: list
) -> None:
    parts = urlsplit(url)
    conn = http_connection(parts.hostname, parts.port, offset, timeout)  # client `offset`: its own 127.0.x.y
    i = offset
    run_id = uuid.uuid4().hex[:8]
    while (t0 := time.monotonic()) < stop:
        # Unique bytes per request (unique.py: a JPEG comment segment): same image, never a cache hit.
        name, data = photos[i % len(photos)]
        body, ctype = multipart(name, tagged(data, f"{run_id}-{offset}-{i}"))
        i += 1
        try:
            conn.request("POST", "/predict", body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse()
            payload = resp.read()
            ok = resp.status == 200 and json.loads(payload).get("success") is True
            status = resp.status
        except (OSError, http.client.HTTPException, ValueError):
            conn.close()
            conn = http_connection(parts.hostname, parts.port, offset, timeout)
            ok, status = False, 0
        t1 = time.monotonic()
        out_all.append(status)
        if start <= t1 <= stop:  # steady state: completions inside the measured window
            out.append((t1, t1 - t0, status, ok))
        if status == 503:  # backpressure: wait as told, like a polite client
            time.sleep(min(float(resp.getheader("Retry-After") or 1), 5.0))
    conn.close()


def run(
    url: str,
    concurrency: int,
    duration: float,
    warmup: float = 3.0,
    timeout: float = 60,
    unique: bool = True,
    photos: list[tuple[str, bytes]] | None = None,
) -> dict:
    """Successful predictions completed per second inside the window, their p50/p95/p99 latency, counts per status.
    Every request sends different bytes (`unique` is kept for callers; it is always on). `photos` (name, bytes)
    default to the small test photos."""
    bodies = photos or photo_bytes()
    start = time.monotonic() + warmup
    stop = start + duration
    out: list = []
    out_all: list = []  # every completion, warm-up included (to divide whole-run counters by)
    threads = [
        threading.Thread(target=_client, args=(url, bodies, start, stop, i, out, timeout, out_all), daemon=True)
        for i in range(concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=warmup + duration + timeout + 10)
    window = stop - start
    ok_lat = np.array([r[1] for r in out if r[3]]) * 1000
    statuses: dict[str, int] = {}
    for r in out:
        statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1
    return {
        "concurrency": concurrency,
        "duration_s": round(window, 2),
        "ok": int(ok_lat.size),
        "sent": len(out_all),
        "ok_per_s": round(ok_lat.size / window, 3),
        "statuses": statuses,
        "p50_ms": round(float(np.percentile(ok_lat, 50)), 1) if ok_lat.size else None,
        "p95_ms": round(float(np.percentile(ok_lat, 95)), 1) if ok_lat.size else None,
        "p99_ms": round(float(np.percentile(ok_lat, 99)), 1) if ok_lat.size else None,
        "max_ms": round(float(ok_lat.max()), 1) if ok_lat.size else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:5000")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds (default 20)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (default 3)")
    args = p.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("load goes to 127.0.0.1 only")
    print(json.dumps(run(args.url, args.concurrency, args.duration, args.warmup)))


if __name__ == "__main__":
    main()
