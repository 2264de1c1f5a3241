"""Per-core scaling in containers: the same closed-loop load against the compose stack with 1 and 2 model
containers at `cpus: 1` each (each one 1 process x 1 thread), beside the process-based matrix; raw ONNX Runtime of
as many processes x 1 thread right before each stack, so that containers and processes measured hours apart on a
machine whose speed drifts compare as ratios to raw.

  scripts/compose_matrix.sh                                   # what `make matrix CONTAINERS=1` runs
  .venv/bin/python -m stress_test.compose_matrix --duration 5 --latency-duration 3 --results-dir /tmp/cm  # smoke

Images come from scripts/compose_images.sh (built offline, WEIGHTS=random:0, fp32). Writes compose_matrix.json
into the results folder (default: the newest one holding bench.json, else a new one).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


from stress_test import artifacts
from stress_test import closed_loop
from stress_test import machine
from stress_test import ort_runner
from testkit.compose_stack import ComposeStack
from stress_test.results import format_table, run_dir_of_this_machine, write_json

COLUMNS = [
    ("models", "model containers"),
    ("cpus_each", "cpus each"),
    ("sat_ok_per_s", "sat img/s"),
    ("per_container", "img/s per container"),
    ("x_one", "x 1 container"),
    ("vs_raw_same", "x raw"),
    ("sat_p50_ms", "sat p50"),
    ("sat_p95_ms", "sat p95"),
    ("lat1_p50_ms", "1-user p50"),
    ("ready_s", "ready s"),
]


def run_one(models: int, args: argparse.Namespace) -> dict[str, Any]:
    """Up with `models` model containers, warm, 1-user latency, saturation; always down -v afterwards."""
    # Every client reaches nginx from the bridge's one gateway address: the per-client bound is raised explicitly.
    stack = ComposeStack(
        args.project, MODEL_CPUS=str(args.cpus), BATCH_SIZE=str(args.batch_size), PER_CLIENT_INFLIGHT="256"
    )
    row: dict[str, Any] = {"models": models, "cpus_each": args.cpus, "batch": args.batch_size}
    stack.down()
    try:
        if args.raw_duration > 0:  # before the stack is up: the machine as quiet as for the matrix's own raw runs
            model = artifacts.variants(artifacts.model_dir(args.model_dir))["fp32"]
            raw = ort_runner.run(ort_runner.Config(str(model), models, 1, args.batch_size, args.raw_duration, 2.0))
            row.update(raw_same_config=raw, raw_img_s=raw["img_s"])
        t0 = time.monotonic()
        stack.up(models=models)
        row["ready_s"] = round(time.monotonic() - t0, 1)
        row["workers"] = [{k: w.get(k) for k in ("host", "threads")} for w in stack.ready_details()["workers"]]
        one = closed_loop.run(stack.url, 1, args.latency_duration, warmup=2)
        row.update(lat1=one, lat1_p50_ms=one["p50_ms"])
        conc = args.concurrency or 2 * models * args.batch_size
        sat = closed_loop.run(stack.url, conc, args.duration, warmup=3)
        row.update(
            saturation=sat,
            sat_ok_per_s=sat["ok_per_s"],
            sat_p50_ms=sat["p50_ms"],
            sat_p95_ms=sat["p95_ms"],
            per_container=round(sat["ok_per_s"] / models, 2),
        )
        if row.get("raw_img_s"):
            row["vs_raw_same"] = round(sat["ok_per_s"] / row["raw_img_s"], 3)
    except Exception as exc:  # one broken run must not lose the other's figures
        row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"{models} container(s) failed: {row['error']}\n{stack.logs()}", file=sys.stderr)
    finally:
        stack.down()
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", help="folder for compose_matrix.json (default: newest with bench.json, else new)")
    p.add_argument("--models", default="1,2", help="model container counts (default 1,2)")
    p.add_argument("--cpus", type=float, default=1.0, help="cpus: per model container (default 1)")
    p.add_argument("--batch-size", type=int, default=8, help="BATCH_SIZE (default 8, as the process matrix)")
    p.add_argument("--duration", type=float, default=30, help="seconds of the saturation run (default 30)")
    p.add_argument("--latency-duration", type=float, default=15, help="seconds of the 1-user run (default 15)")
    p.add_argument("--concurrency", type=int, default=0, help="clients in flight (default 2 x containers x batch)")
    p.add_argument("--model-dir", help="folder of the fp32 ONNX the raw runs use (default: artifacts.model_dir)")
    p.add_argument("--raw-duration", type=float, default=10, help="seconds of raw ONNX Runtime per count (0: none)")
    p.add_argument("--project", default="resnet-compose-test", help="compose project (the images' name prefix)")
    args = p.parse_args()
    out = Path(args.results_dir) if args.results_dir else run_dir_of_this_machine()
    rows: list[dict[str, Any]] = []
    for models in [int(x) for x in args.models.split(",") if x.strip()]:
        rows.append(run_one(models, args))
        base = next((r["sat_ok_per_s"] for r in rows if r["models"] == 1 and r.get("sat_ok_per_s")), None)
        for r in rows:
            if base and r.get("sat_ok_per_s"):
                r["x_one"] = round(r["sat_ok_per_s"] / base, 2)
        write_json(out / "compose_matrix.json", {"machine": machine.describe(), "settings": vars(args), "runs": rows})
    print(format_table(rows, COLUMNS))
    print(f"wrote {out / 'compose_matrix.json'}")
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
