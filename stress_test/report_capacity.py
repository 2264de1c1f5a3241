"""The capacity plan section of the hardware report: how many worker cores one Redis can feed, and how to size
a deployment for 10x and 1000x today's load, from queue_capacity.json (bench_queue.py) and the per-core
inference rates of bench.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stress_test.report_data import Figures, per_core
from stress_test.results import read_json

REDIS_HEADROOM = 0.5  # plan Redis at half a core: failover catch-up, replication and bursts need the rest
GROWTH = (1, 10, 1000)


def best_per_core(f: Figures) -> dict[str, float]:
    """Best raw images/s per core for each variant (fp32, int8) in this run's bench."""
    out: dict[str, float] = {}
    for row in per_core(f):
        out[row["variant"]] = max(out.get(row["variant"], 0.0), row["img_s_per_core"])
    return out


def plan(queue: dict[str, Any], rates: dict[str, float], today_img_s: float) -> list[dict[str, Any]]:
    """Rows per (growth, variant): jobs/s, worker cores, Redis shards, network through each shard."""
    best = queue["best"]
    per_redis = best["jobs_s_per_redis_core"] * REDIS_HEADROOM
    payload = best["payload_bytes"]
    rows = []
    for growth in GROWTH:
        need = today_img_s * growth
        shards = max(1, math.ceil(need / per_redis))
        for variant, rate in sorted(rates.items()):
            rows.append(
                {
                    "load": f"{growth}x",
                    "img_s": round(need, 1),
                    "variant": variant,
                    "worker_cores": math.ceil(need / rate),
                    "redis_shards": shards,
                    "gbit_s_per_shard": round(need / shards * payload * 2 * 8 / 1e9, 2),
                }
            )
    return rows


def capacity_section(folder: Path, f: Figures) -> list[str]:
    queue = read_json(folder / "queue_capacity.json")
    head = ["## Capacity plan (`python -m stress_test.bench_queue`)", ""]
    if not queue:
        return head + ["Not measured (no queue_capacity.json in this run).", ""]
    best, s = queue["best"], queue["settings"]
    rates = best_per_core(f)
    e2e = f.e2e_best("fp32")
    today = e2e["sat_ok_per_s"] if e2e else None
    lines = head + [
        f"The full job protocol without the model — the API's own `job_client.submit` (queue-depth check, XADD, "
        f"BLPOP) from many client threads in {s['client_procs']} processes, the worker's own `JobQueue` "
        f"(XREADGROUP of batches of {s['batch']}, then RPUSH + EXPIRE + XACK + XDEL in one MULTI) in "
        f"{s['workers']} processes — with unique {best['payload_bytes']}-byte payloads (one 224x224x3 uint8 tensor), "
        f"Redis {s.get('redis')}, {s['duration']} s per point. Load generators share the machine's "
        f"{s.get('cores')} cores with Redis, so the throughput is also divided by Redis' own CPU time: jobs/s per "
        f"Redis core is the ceiling of one Redis (single-threaded) and what the plan uses — a linear extrapolation "
        f"from the measured Redis CPU share, the less certain the lower that share is.",
        "",
    ]
    lines += _table(
        queue["runs"],
        [
            ("clients", "clients"),
            ("jobs_s", "jobs/s"),
            ("p50_ms", "p50 ms"),
            ("p95_ms", "p95 ms"),
            ("redis_cpu_pct", "Redis CPU %"),
            ("jobs_s_per_redis_core", "jobs/s per Redis core"),
            ("mb_s_through_redis", "MB/s through Redis"),
            ("errors", "errors"),
        ],
    )
    per_redis = best["jobs_s_per_redis_core"] * REDIS_HEADROOM
    feeds = ", ".join(f"{math.floor(per_redis / r)} {v} cores ({r} img/s per core)" for v, r in sorted(rates.items()))
    feeds = feeds or "n/a (no bench.json)"
    lines += [
        f"- One Redis carries about **{best['jobs_s_per_redis_core']} jobs/s** at a full core; planned at "
        f"{int(REDIS_HEADROOM * 100)}% of it ({per_redis:.0f} jobs/s) it feeds **{feeds}** of "
        "single-threaded workers at the best raw per-core rates of this run.",
        "- Today's load is taken as this machine's end-to-end saturation, "
        + (f"{today} img/s (fp32, `make matrix`)." if today else "not measured (no matrix.json)."),
        "",
    ]
    if today and rates:
        lines += _table(
            plan(queue, rates, today),
            [
                ("load", "load"),
                ("img_s", "img/s"),
                ("variant", "variant"),
                ("worker_cores", "worker cores"),
                ("redis_shards", "Redis shards"),
                ("gbit_s_per_shard", "Gbit/s per shard"),
            ],
        )
    lines += [
        "Beyond one Redis: the job stream is the one shared part, so it is split, not scaled up. Run S streams "
        "`ml:jobs:{k}` (k = 0..S-1) on a Redis Cluster, each key with a hash tag so the stream, its group and the "
        "result lists `ml:result:{k}:<id>` of its jobs live in one slot (one node: the MULTI that answers and "
        "acknowledges stays atomic, and the API's BLPOP waits on the node that gets the answer). The API picks a "
        "stream per request (round-robin, or the shortest XLEN); each stream has its own worker Deployment and its "
        "own KEDA ScaledObject (`redis-cluster-streams`, streamLength, as today) and its own MAX_QUEUE_DEPTH. "
        "Shards are added by adding streams, and a node's failure stalls only its 1/S of the traffic "
        "(replicas per shard, as with Sentinel today). At 1000x the network through each shard — payload in and "
        "out — is the second limit to watch: the table gives it per shard.",
        "",
    ]
    return lines


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join("–" if r.get(k) is None else str(r[k]) for k, _ in columns) + " |" for r in rows]
    return [head, sep, *body, ""]
