"""Redis throughput of the full job protocol, without the model: how many jobs/s one Redis can carry.

Client processes run the API's own `job_client.submit` (backpressure read + group check, XADD of the payload,
BLPOP of the result) from many threads; worker processes run the model service's own `JobQueue` (XREADGROUP
of a batch, then RPUSH + EXPIRE + XACK + XDEL in one MULTI) and answer at once with a result of the real shape.
Every request carries unique bytes of the size the service really ships (default: one 224x224x3 uint8 tensor,
150528 bytes). Redis' own CPU time is measured, so the figure can be scaled to a whole Redis core: on a shared
machine the load generators compete with Redis for the cores, and jobs/s at 100% Redis CPU is the ceiling the
capacity plan (report_capacity.py) uses.

  python -m stress_test.bench_queue                          # ~1 min; writes queue_capacity.json
  python -m stress_test.bench_queue --duration 3 --clients 8 # smoke run
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil


from stress_test.service_code import service_module
from stress_test.results import format_table, run_dir_of_this_machine, write_json

from testkit.redis_server import RedisServer

HERE = Path(__file__).resolve().parent

TENSOR_BYTES = 224 * 224 * 3  # the uint8 tensor a job carries
COLUMNS = [
    ("clients", "clients"),
    ("workers", "worker procs"),
    ("jobs_s", "jobs/s"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("redis_cpu_pct", "Redis CPU %"),
    ("jobs_s_per_redis_core", "jobs/s per Redis core"),
    ("mb_s_through_redis", "MB/s through Redis"),
    ("errors", "errors"),
]


def _client(port: int, threads: int, payload_bytes: int, start: Any, stop: Any, out: Any, ready: Any) -> None:
    """One API-like process: `threads` threads each submitting jobs back to back through job_client.submit."""
    os.environ.update(
        {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "MAX_QUEUE_DEPTH": "1000000", "REQUEST_TIMEOUT_S": "30"}
    )
    job_client = service_module("api", "job_client")  # the API's own protocol code

    base = os.urandom(payload_bytes)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def loop() -> None:
        start.wait()
        while not stop.is_set():
            payload = uuid.uuid4().bytes + base[16:]  # unique bytes per request
            t0 = time.perf_counter()
            try:
                result = job_client.submit(payload, "bench.bin", 5, time.time() + 30)
                ok = bool(result.get("ok"))
            except Exception:  # counted, not fatal: the figure says how many
                ok = False
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[0] += 1

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for t in workers:
        t.start()
    ready.put("client")
    stop.wait()
    for t in workers:
        t.join(35)
    out.put({"latencies": latencies, "errors": errors[0]})


def _worker(port: int, index: int, batch: int, stop: Any, ready: Any) -> None:
    """One model-worker-like process: the real JobQueue, answering every job at once (no inference)."""
    settings = service_module("model", "settings")
    job_queue = service_module("model", "job_queue")
    JobQueue, connect = job_queue.JobQueue, job_queue.connect

    cfg = settings.load(REDIS_HOST="127.0.0.1", REDIS_PORT=port, BATCH_SIZE=batch)
    name = f"bench-{os.getpid()}-{index}"
    queue = JobQueue(connect(cfg, 100), cfg, name)
    queue.ensure_group()
    ready.put("worker")
    while not stop.is_set():
        jobs = queue.read_batch(batch, 100)
        queue.answer(
            [
                (
                    job,
                    {
                        "id": job.id,
                        "ok": True,
                        "prediction": "tabby",
                        "score": 0.5,
                        "top_k": [["tabby", 0.5]] * job.top_k,
                        "error": None,
                        "message": "",
                        "worker": name,
                        "batch_size": len(jobs),
                        "queued_ms": 0.0,
                        "inference_ms": 0.0,
                    },
                )
                for job in jobs
            ]
        )


def run_point(
    port: int,
    redis_pid: int,
    clients: int,
    client_procs: int,
    workers: int,
    batch: int,
    payload_bytes: int,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    import redis

    redis.Redis(port=port).xgroup_create("ml:jobs", "ml:workers", id="0", mkstream=True)
    ctx = mp.get_context("spawn")
    start, stop, wstop, out, ready = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue()
    per_proc = [clients // client_procs + (1 if i < clients % client_procs else 0) for i in range(client_procs)]
    wprocs = [ctx.Process(target=_worker, args=(port, i, batch, wstop, ready), daemon=True) for i in range(workers)]
    cprocs = [
        ctx.Process(target=_client, args=(port, n, payload_bytes, start, stop, out, ready), daemon=True)
        for n in per_proc
        if n
    ]
    for p in wprocs + cprocs:
        p.start()
    for _ in wprocs + cprocs:  # imports and connections done before the clock starts
        ready.get(timeout=120)
    start.set()
    time.sleep(warmup)
    redis_proc = psutil.Process(redis_pid)
    cpu0, t0 = sum(redis_proc.cpu_times()[:2]), time.monotonic()
    done_before = _count_answers(port)
    time.sleep(duration)
    cpu1, t1 = sum(redis_proc.cpu_times()[:2]), time.monotonic()
    done_after = _count_answers(port)
    stop.set()
    results = [out.get(timeout=60) for _ in cprocs]
    wstop.set()
    for p in cprocs + wprocs:
        p.join(10)
        if p.is_alive():
            p.kill()
    measured = {"seconds": t1 - t0, "jobs": done_after - done_before, "redis_cpu_s": cpu1 - cpu0}
    return _point_row(clients, workers, batch, payload_bytes, measured, results)


def _point_row(
    clients: int, workers: int, batch: int, payload_bytes: int, measured: dict[str, float], results: list[dict]
) -> dict[str, Any]:
    """One row of the table: jobs/s, latency percentiles and what Redis' own CPU time says about its ceiling."""
    latencies = sorted(x for r in results for x in r["latencies"])
    seconds = measured["seconds"]
    jobs_s = measured["jobs"] / seconds
    cpu_frac = measured["redis_cpu_s"] / seconds
    return {
        "clients": clients,
        "workers": workers,
        "batch": batch,
        "payload_bytes": payload_bytes,
        "seconds": round(seconds, 2),
        "jobs": measured["jobs"],
        "jobs_s": round(jobs_s, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 2) if latencies else None,
        "redis_cpu_pct": round(100 * cpu_frac, 1),
        "jobs_s_per_redis_core": round(jobs_s / cpu_frac, 1) if cpu_frac > 0 else None,
        "mb_s_through_redis": round(jobs_s * payload_bytes * 2 / 1e6, 1),  # in from the API, out to a worker
        "errors": sum(r["errors"] for r in results),
    }


def _count_answers(port: int) -> int:
    """Jobs answered so far, exact because answered entries are deleted: entries ever added minus the length."""
    import redis

    r = redis.Redis(port=port)
    info = r.xinfo_stream("ml:jobs")
    return int(info["entries-added"]) - int(info["length"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--payload-bytes", type=int, default=TENSOR_BYTES, help="bytes per job (default 224*224*3)")
    p.add_argument("--clients", default="16,64", help="concurrent client threads per point, comma-separated")
    p.add_argument("--client-procs", type=int, default=4, help="processes the client threads are spread over")
    p.add_argument("--workers", type=int, default=4, help="worker processes (real JobQueue, no inference)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per point")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument(
        "--results-dir",
        help="where queue_capacity.json goes (default: the newest run with a bench.json, else a new run folder)",
    )
    args = p.parse_args()
    folder = Path(args.results_dir) if args.results_dir else run_dir_of_this_machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        server = RedisServer(Path(tmp)).start()
        proc, port = server.proc, server.port
        try:
            for clients in [int(c) for c in args.clients.split(",") if c.strip()]:
                import redis

                redis.Redis(port=port).flushall()
                rows.append(
                    run_point(
                        port,
                        proc.pid,
                        clients,
                        min(args.client_procs, clients),
                        args.workers,
                        args.batch,
                        args.payload_bytes,
                        args.duration,
                        args.warmup,
                    )
                )
                print(
                    format_table(rows, COLUMNS).splitlines()[-1] if len(rows) > 1 else format_table(rows, COLUMNS),
                    flush=True,
                )
        finally:
            server.stop()
    best = max(rows, key=lambda r: r["jobs_s_per_redis_core"] or 0)
    data = {
        "settings": vars(args) | {"cores": psutil.cpu_count(), "redis": _redis_version()},
        "runs": rows,
        "best": best,
    }
    path = write_json(folder / "queue_capacity.json", data)
    print(
        f"\none Redis core carries ~{best['jobs_s_per_redis_core']} jobs/s of {args.payload_bytes} bytes "
        f"(measured {best['jobs_s']} jobs/s at {best['redis_cpu_pct']}% Redis CPU); wrote {path}"
    )


def _redis_version() -> str:
    import subprocess

    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return out.split("v=")[1].split()[0] if "v=" in out else out.strip()


if __name__ == "__main__":
    main()
