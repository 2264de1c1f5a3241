"""Headless load matrix against the real stack: model configurations x Locust user counts, plus saturation.

For each configuration (variant x WORKERS x THREADS, WORKERS x THREADS <= cores) it starts the stack as `make run`
serves it (supervisord: Redis, the model service, gunicorn on a unix socket, nginx in front) on free 127.0.0.1
ports, records each worker's time to ready and RSS, measures the exact
1-user latency, runs Locust for every user count (CSVs under <results>/matrix/<config>/), then measures the
maximum sustained /predict throughput with a closed-loop client, and prints its ratio to the best raw ONNX
Runtime figure of bench.json in the same results folder.

Then the two workloads (workloads.py: small and 12 MP photos, keras and fast preprocessing, 8 clients)
into workloads.json of the same folder.

  python -m stress_test.run_matrix                       # full matrix + workloads (~17 min on 2 cores)
  python -m stress_test.run_matrix --quick               # smoke: one configuration, a few seconds each
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


from stress_test import artifacts
from stress_test import closed_loop
from stress_test import locust_run
from stress_test import machine
from stress_test import ort_runner
from stress_test import stages
from stress_test import workloads
from stress_test.ort_runner import grid
from stress_test.results import format_table, read_json, run_dir_of_this_machine, write_json
from stress_test.service import FRONT, METRICS_PUSH_S, Service

COLUMNS = [
    ("config", "config"),
    ("ready_s_max", "ready s"),
    ("rss_mb_max", "RSS MB"),
    ("lat1_p50_ms", "1-user p50"),
    ("sat_ok_per_s", "sat img/s"),
    ("sat_p50_ms", "sat p50"),
    ("raw_img_s", "raw same cfg"),
    ("vs_raw_same", "x raw same"),
    ("vs_raw_best", "x bench best"),
]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def run_config(
    variant: str, workers: int, threads: int, batch: int, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    """One configuration from start to stop; the stack is always stopped, logs kept under <out>/logs."""
    name = f"{variant}-w{workers}-t{threads}-b{batch}"
    work = Path(tempfile.mkdtemp(prefix=f"matrix-{name}-"))
    env = {
        "WORKERS": str(workers),
        "THREADS": str(threads),
        "BATCH_SIZE": str(batch),
        "MODEL_VARIANT": variant,
        "MODEL_DIR": str(artifacts.model_dir(args.model_dir)),
        "GUNICORN_WORKERS": str(args.gunicorn_workers),
        "GUNICORN_THREADS": str(args.gunicorn_threads),
    }
    svc = Service(work, env)
    row: dict[str, Any] = {"config": name, "variant": variant, "workers": workers, "threads": threads, "batch": batch}
    try:
        if args.raw_duration > 0:  # raw ORT, same configuration, right before: the clock of a shared host drifts
            model = artifacts.variants(artifacts.model_dir(args.model_dir))[variant]
            raw = ort_runner.run(ort_runner.Config(str(model), workers, threads, batch, args.raw_duration, 2.0))
            one = ort_runner.run(ort_runner.Config(str(model), 1, threads, 1, args.raw_duration / 2, 1.0))
            row.update(raw_same_config=raw, raw_img_s=raw["img_s"], raw_b1=one, raw_b1_p50_ms=one["p50_ms"])
        started = svc.start()
        row.update(ready_s=started["ready_s"], ready_s_max=max(started["ready_s"]), rss_mb_ready=started["rss_mb"])
        one = closed_loop.run(svc.url, 1, args.latency_duration, warmup=2)
        row.update(lat1=one, lat1_p50_ms=one["p50_ms"])
        row["locust"] = [locust_run.run(svc.url, u, args.duration, out / "matrix" / name / f"u{u}") for u in args.users]
        conc = args.saturation_concurrency or min(48, max(16, 2 * workers * batch))
        metrics0 = stages.scrape(svc.url, settle_s=2 * METRICS_PUSH_S)  # the Locust runs' last batches landed
        before, t0 = svc.cpu_seconds(), time.monotonic()
        sat = closed_loop.run(svc.url, conc, args.saturation_duration, warmup=3)
        after, wall = svc.cpu_seconds(), time.monotonic() - t0
        sat["cpu_cores_used"] = {k: round((after[k] - before.get(k, 0.0)) / wall, 3) for k in after}
        sat["stages_ms"] = stages.stage_ms(metrics0, stages.scrape(svc.url, settle_s=2 * METRICS_PUSH_S))
        row.update(saturation=sat, sat_ok_per_s=sat["ok_per_s"], sat_p50_ms=sat["p50_ms"])
        if row.get("raw_img_s"):
            row["vs_raw_same"] = round(sat["ok_per_s"] / row["raw_img_s"], 3)
        row["rss_mb_after"] = svc.worker_rss()
        row["rss_mb_max"] = max(row["rss_mb_after"] + row["rss_mb_ready"], default=None)
    except Exception as exc:  # one broken configuration must not lose the others' results
        row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"{name} failed: {row['error']}", file=sys.stderr)
    finally:
        svc.stop()
        logs = out / "logs" / name
        logs.mkdir(parents=True, exist_ok=True)
        for log in svc.log_files():
            (logs / log.name).write_text(log.read_text(errors="replace")[-20000:])
        shutil.rmtree(work, ignore_errors=True)
    return row


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", help="folder for the results (default: newest with bench.json, else a new one)")
    p.add_argument("--model-dir", help="MODEL_DIR for the workers (default MODEL_DIR or model/artifacts)")
    p.add_argument("--variants", default="", help="comma list among fp32,int8 (default: every variant present)")
    p.add_argument("--workers", default="1,2", help="worker processes (default 1,2)")
    p.add_argument(
        "--threads", default="", help="intra-op threads (default: every count with workers x threads <= cores)"
    )
    p.add_argument("--batch-size", type=int, default=8, help="BATCH_SIZE for the workers (default 8)")
    p.add_argument("--users", default="1,8,32", help="Locust user counts (default 1,8,32)")
    p.add_argument(
        "--all-configs",
        action="store_true",
        help="also configurations that leave cores idle "
        "(workers x threads < cores: the raw bench already shows their scaling)",
    )
    p.add_argument("--no-workloads", action="store_true", help="skip the small / 12 MP workload runs")
    workloads.add_arguments(p)
    p.add_argument("--duration", type=int, default=30, help="seconds of Locust per user count (default 30)")
    p.add_argument(
        "--latency-duration", type=float, default=15, help="seconds of the exact 1-user latency run (default 15)"
    )
    p.add_argument("--saturation-duration", type=float, default=30, help="seconds of the saturation run (default 30)")
    p.add_argument(
        "--saturation-concurrency", type=int, default=0, help="clients in flight (default 2 x workers x batch, 16..48)"
    )
    p.add_argument(
        "--raw-duration",
        type=float,
        default=10,
        help="seconds of raw ORT with the same configuration just before each stack starts (0 = skip; default 10)",
    )
    p.add_argument("--gunicorn-workers", type=int, default=2, help="GUNICORN_WORKERS (default 2)")
    p.add_argument(
        "--gunicorn-threads", type=int, default=16, help="GUNICORN_THREADS: requests in flight per process (default 16)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: first variant, 1 worker x 1 thread, users 1,4, 5 s each; results in a temp dir unless --results-dir",
    )
    args = p.parse_args()
    args.users = ints(args.users)
    if args.quick:
        args.workers, args.threads, args.users = "1", "1", [1, 4]
        args.duration, args.latency_duration, args.saturation_duration, args.raw_duration = 5, 3, 5, 3
        args.all_configs, args.no_workloads = True, True
    return args


def main() -> None:
    args = parse_args()
    if args.results_dir:
        out = Path(args.results_dir)
    elif args.quick:  # a smoke run must not overwrite the matrix.json of a real run
        out = Path(tempfile.mkdtemp(prefix="matrix-quick-"))
    else:
        out = run_dir_of_this_machine()
    present = artifacts.variants(artifacts.model_dir(args.model_dir))
    variants = [v for v in args.variants.split(",") if v] or list(present)
    variants = variants[:1] if args.quick else variants
    bench = read_json(out / "bench.json") or {}
    raw_best = {v: r["img_s"] for v, r in bench.get("best", {}).items()}
    rows: list[dict[str, Any]] = []
    for variant in variants:
        for w, t, b in grid(machine.cores(), ints(args.workers), ints(args.threads) or None, [args.batch_size]):
            if w * t < machine.cores() and not args.all_configs:
                continue
            row = run_config(variant, w, t, b, args, out)
            if row.get("sat_ok_per_s") and raw_best.get(variant):
                row["vs_raw_best"] = round(row["sat_ok_per_s"] / raw_best[variant], 3)
            rows.append(row)
            write_json(
                out / "matrix.json",
                {
                    "machine": machine.describe(),
                    "front": FRONT,
                    "raw_best_img_s": raw_best,
                    "settings": {k: v for k, v in vars(args).items()},
                    "configs": rows,
                },
            )
            print(format_table([row], COLUMNS), flush=True)
    print("\n" + format_table(rows, COLUMNS))
    for variant in variants:
        ok = [r for r in rows if r["variant"] == variant and r.get("sat_ok_per_s")]
        if ok:
            best = max(ok, key=lambda r: r["sat_ok_per_s"])
            ratio = (
                f"{best['sat_ok_per_s'] / raw_best[variant]:.2f} x raw ORT best ({raw_best[variant]} img/s)"
                if raw_best.get(variant)
                else "no bench.json in this results folder: run bench_model.py first"
            )
            print(
                f"{variant}: end-to-end saturation {best['sat_ok_per_s']} img/s ({best['config']}) = {ratio}; "
                f"{best.get('vs_raw_same')} x raw ORT of the same configuration measured just before"
            )
    print(f"wrote {out / 'matrix.json'} and Locust CSVs under {out / 'matrix'}")
    if not args.no_workloads:
        workloads.run(args, out)


if __name__ == "__main__":
    main()
