"""Find the worker settings for this machine: a short raw benchmark over runtime x workers x threads x batch.

Prints the settings that give the most images/s (throughput) and the lowest single-request latency, as the
environment variables the worker reads (WORKERS, THREADS, BATCH_SIZE, MODEL_VARIANT, RUNTIME), e.g.

  python -m stress_test.config_search                      # fp32 on both runtimes, ~2 min on 2 cores
  python -m stress_test.config_search --variant int8 --runtime onnxruntime --duration 5

Which runtime is faster depends on the CPU and the variant, so both are measured unless one is named; within 3 % of
each other, the default runtime (ONNX Runtime) is recommended. Raw figures bound what a stack gains end to end; the
report's OpenVINO section measures that.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from resnet_common.protocol import DEFAULT_RUNTIME, Runtime

from stress_test import artifacts
from stress_test import machine
from stress_test import ort_runner
from stress_test import raw_runtime
from stress_test.results import progress_line, run_dir_of_this_machine, write_json

COLUMNS = [
    ("runtime", "runtime"),
    *ort_runner.RUN_COLUMNS,
    ("per_image_ms", "ms/img"),
]
THROUGHPUT_TOLERANCE = 0.03  # configurations within 3% of the best img/s (or batch-1 p50) count as equal


def runtime_of(row: dict[str, Any]) -> str:
    """The RUNTIME a row was measured on (its "runtime" is "<name> <version>"; rows without one: ONNX Runtime)."""
    return str(row.get("runtime") or DEFAULT_RUNTIME).split()[0]


def recommend(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Throughput: the best img/s; rows within 3% of it count as equal, and of those the default runtime's, then
    the lowest p95, win. Latency: the lowest batch-1 p50, likewise within 3% the default runtime's first."""
    top = max(r["img_s"] for r in rows)
    near = [r for r in rows if r["img_s"] >= (1 - THROUGHPUT_TOLERANCE) * top]
    throughput = min(near, key=lambda r: (runtime_of(r) != DEFAULT_RUNTIME, r["p95_ms"], -r["img_s"]))
    singles = [r for r in rows if r["batch"] == 1] or rows
    fastest = min(r["p50_ms"] for r in singles)
    close = [r for r in singles if r["p50_ms"] <= (1 + THROUGHPUT_TOLERANCE) * fastest]
    latency = min(close, key=lambda r: (runtime_of(r) != DEFAULT_RUNTIME, r["p50_ms"], -r["img_s"]))
    return {"throughput": throughput, "latency": latency}


def env_line(row: dict[str, Any], variant: str) -> str:
    return (
        f"WORKERS={row['workers']} THREADS={row['threads']} BATCH_SIZE={row['batch']} MODEL_VARIANT={variant} "
        f"RUNTIME={runtime_of(row)}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="folder with the .onnx files (default MODEL_DIR or model/artifacts)")
    p.add_argument(
        "--variant",
        default=os.environ.get("MODEL_VARIANT") or "fp32",
        help="fp32 or int8 (default MODEL_VARIANT or fp32)",
    )
    p.add_argument(
        "--runtime",
        choices=[*(r.value for r in Runtime), "all"],
        default="all",
        help="what runs the ONNX file (default all: each, and the recommendation names the faster)",
    )
    p.add_argument("--workers", default="", help="process counts (default 1..cores)")
    p.add_argument("--batches", default="1,2,4,8,16", help="batch sizes (default 1,2,4,8,16)")
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per configuration (default 3)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per configuration (default 1)")
    p.add_argument("--out", help="also write the measurements and the recommendation as JSON here")
    p.add_argument(
        "--save",
        action="store_true",
        help="write config_search.json into this machine's results folder (results.run_dir_of_this_machine), for the report",
    )
    args = p.parse_args()
    models = artifacts.variants(artifacts.model_dir(args.model_dir))
    if args.variant not in models:
        raise SystemExit(f"variant {args.variant} not found (have {sorted(models)}); run the conversion first")
    cores = machine.cores()
    workers = [int(x) for x in args.workers.split(",") if x] or list(range(1, cores + 1))
    batches = [int(x) for x in args.batches.split(",") if x]
    runtimes = list(Runtime) if args.runtime == "all" else [Runtime(args.runtime)]
    rows = []
    for w, t, b in ort_runner.grid(cores, workers, None, batches):
        for runtime in runtimes:  # back to back per configuration: a drift of the machine hits both runtimes alike
            cfg = ort_runner.Config(str(models[args.variant]), w, t, b, args.duration, args.warmup)
            rows.append(raw_runtime.run(runtime, cfg))
            print(progress_line(rows, COLUMNS), flush=True)
    best = recommend(rows)
    t, lat = best["throughput"], best["latency"]
    print(f"\nmachine: {cores} cores; variant {args.variant}")
    for runtime in runtimes:
        top = max((r for r in rows if runtime_of(r) == runtime), key=lambda r: r["img_s"])
        print(f"{runtime}: at best {top['img_s']} img/s ({top['workers']}x{top['threads']} batch {top['batch']})")
    print(f"# throughput: {t['img_s']} img/s, batch p95 {t['p95_ms']} ms\n{env_line(t, args.variant)}")
    print(f"# latency: p50 {lat['p50_ms']} ms per request at {lat['img_s']} img/s\n{env_line(lat, args.variant)}")
    out = Path(args.out) if args.out else None
    if args.save and not out:
        out = run_dir_of_this_machine() / "config_search.json"
    if out:
        print(f"wrote {out}")
        write_json(out, {"variant": args.variant, "cores": cores, "runs": rows, "recommended": best})


if __name__ == "__main__":
    main()
