"""The two workloads side by side: small photos and 12 MP phone photos, end to end against raw.

One stack per (variant, PREPROCESS) at 2 workers × 1 thread, batch 8: the raw runtime of the same configuration
(ONNX Runtime, or OpenVINO for RUNTIME=openvino) is measured right before it starts (batch 8, and one process at
batch 1 for the lone-request latency; before an OpenVINO stack, ONNX Runtime's batch 8 as well: how fast the
machine ran then); then closed-loop runs of 8 clients sending unique bytes per request. Each run records img/s,
p50, its ratio to raw, the CPU cores each part used (the load generator shares the cores: its share is printed
beside the figure), the Redis bytes per request (INFO total_net_input/output_bytes) and the per-stage profile from
/metrics. Writes workloads.json.

  python -m stress_test.workloads --quick          # a few seconds per run, results in a temp folder
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from resnet_common.protocol import DEFAULT_RUNTIME, Runtime

from stress_test import artifacts
from stress_test import closed_loop
from stress_test import cpu_account
from stress_test import machine
from stress_test import ort_runner
from stress_test import pyspy_profile
from stress_test import raw_runtime
from stress_test import stages
from stress_test.phone_photos import phone_photos
from stress_test.photos import photo_bytes
from stress_test.results import bench_run_of_this_machine, format_table, write_json
from stress_test.service import METRICS_PUSH_S, Service

# (variant, PREPROCESS, [(workload, clients)], extra settings): what a target needs (the workload targets table),
# plus the same fp32 small-photo run with BATCH_SHARE=0 (greedy batches), to show what the fair share is worth, the
# INT8 one with READ_AHEAD=0 (answer, then read), what reading the next batch while answering is worth,
# and the small-photo runs of both variants again with RUNTIME=openvino: whether OpenVINO wins end to end, not only
# raw, for each.
PLAN = [
    ("fp32", "keras", [("small", 1), ("small", 8), ("12mp", 8)], {}),
    ("fp32", "fast", [("12mp", 8)], {}),
    ("int8", "keras", [("small", 8)], {}),
    ("fp32", "keras", [("small", 8)], {"BATCH_SHARE": "0"}),
    ("int8", "keras", [("small", 8)], {"READ_AHEAD": "0"}),
    ("fp32", "keras", [("small", 1), ("small", 8)], {"RUNTIME": Runtime.OPENVINO}),
    ("int8", "keras", [("small", 8)], {"RUNTIME": Runtime.OPENVINO}),
]
COLUMNS = [
    ("name", "run"),
    ("ok_per_s", "img/s"),
    ("p50_ms", "p50 ms"),
    ("raw_img_s", "raw img/s"),
    ("vs_raw", "x raw"),
    ("load_client_share", "load gen CPU share"),
    ("redis_kib_per_request", "Redis KiB/req"),
]


def redis_bytes(svc: Service) -> int:
    info = svc.redis_client().info("stats")
    return int(info["total_net_input_bytes"]) + int(info["total_net_output_bytes"])


def service_pids(svc: Service) -> dict[str, list[int]]:
    """The processes doing the work: gunicorn's and the model service's, without each program's main process."""
    parts = svc.parts()
    out = {}
    for group, program in (("api", "gunicorn"), ("model", "model")):
        try:
            out[group] = sorted(parts[group] - {svc.stack.program_pid(program)})
        except (FileNotFoundError, ValueError):
            out[group] = []
    return out


IDLE_WINDOW_S = 5.0  # benchmark harness only: the idle stack's background CPU (/proc counts 10 ms ticks)
PART_NAMES = {"api": "gunicorn", "model": "model_service", "redis": "redis", "nginx": "nginx"}


def cpu_roots(svc: Service) -> dict[int, str]:
    """pid -> part for cpu_account: supervisord, every process of each program of the stack, every model worker
    process, this load generator."""
    roots = {svc.stack.proc.pid: "supervisord"} if svc.stack.proc is not None else {}  # run.sh execs supervisord
    for name, pids in svc.parts().items():
        roots |= dict.fromkeys(pids, PART_NAMES.get(name, name))
    for pid in service_pids(svc)["model"]:
        roots[pid] = "worker"
    roots[psutil.Process().pid] = "load_generator"
    return roots


def measure(
    svc: Service, name: str, photos: list[tuple[str, bytes]], clients: int, seconds: float, profile: Path | None = None
) -> dict[str, Any]:
    """One closed-loop run with its CPU split, Redis traffic and stage profile; with `profile`, a second, shorter run
    under py-spy follows (py-spy's sampling costs CPU on these cores, so it never overlaps the measured run)."""
    with cpu_account.CpuWindow(cpu_roots(svc)) as idle:  # the stack's background CPU, without load
        time.sleep(IDLE_WINDOW_S)
    metrics0 = stages.scrape(svc.url, settle_s=2 * METRICS_PUSH_S)
    window = cpu_account.CpuWindow(cpu_roots(svc)).__enter__()  # closed after the second scrape: same images
    cpu0, net0, t0 = svc.cpu_seconds(), redis_bytes(svc), time.monotonic()
    run = closed_loop.run(svc.url, clients, seconds, warmup=3, photos=photos)
    cpu1, net1, wall = svc.cpu_seconds(), redis_bytes(svc), time.monotonic() - t0
    cores = {k: round((cpu1[k] - cpu0.get(k, 0.0)) / wall, 3) for k in cpu1}
    busy = sum(v for k, v in cores.items() if k != "other") or 1.0
    requests_sent = run["sent"]  # warm-up included, like the Redis counters
    run.update(
        name=name,
        cpu_cores_used=cores,
        load_client_share=round(cores.get("load_client", 0.0) / busy, 3),
        redis_kib_per_request=round((net1 - net0) / 1024 / max(requests_sent, 1), 1),
        stages_ms=stages.stage_ms(metrics0, stages.scrape(svc.url, settle_s=2 * METRICS_PUSH_S)),
    )
    window.close()
    if "images" in run["stages_ms"]:
        run["cpu_account"] = window.account(run["stages_ms"]["images"], run["stages_ms"]["inference_cpu_s"], idle)
        print(f"{name}: {cpu_account.format_account(run['cpu_account'])}", flush=True)
    if profile:
        spy_seconds = max(3.0, seconds / 3)
        spy = pyspy_profile.Recorder(service_pids(svc), spy_seconds, profile).start()
        closed_loop.run(svc.url, clients, spy_seconds, warmup=0, photos=photos)
        run["pyspy"] = spy.summary()
    return run


def settings_suffix(extra: dict[str, str] | None) -> str:
    """How a stack's extra settings show in its runs' names: -read_ahead0 for READ_AHEAD=0."""
    return "".join(f"-{k.lower()}{v}" for k, v in (extra or {}).items())


def run_name(workload: str, variant: str, mode: str, clients: int, extra: dict[str, str] | None) -> str:
    """A run's name in workloads.json and the report, e.g. small-int8-keras-c8-read_ahead0."""
    return f"{workload}-{variant}-{mode}-c{clients}{settings_suffix(extra)}"


def run_names() -> list[str]:
    """Every run of PLAN, in order."""
    return [run_name(w, variant, mode, c, extra) for variant, mode, plan, extra in PLAN for w, c in plan]


def raw_cfg(model: Path, args: argparse.Namespace) -> ort_runner.Config:
    """The raw measurement before each stack: its configuration (2 × 1, batch 8)."""
    return ort_runner.Config(str(model), 2, 1, 8, args.workload_raw_duration, 2.0)


def run_stack(
    variant: str,
    mode: str,
    plan: list[tuple[str, int]],
    args: argparse.Namespace,
    workloads: dict[str, list],
    extra: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    model_dir = artifacts.model_dir(args.model_dir)
    model = artifacts.variants(model_dir)[variant]
    runtime = (extra or {}).get("RUNTIME", DEFAULT_RUNTIME)
    raw = raw_runtime.run(runtime, raw_cfg(model, args))
    raw_b1 = raw_runtime.run(runtime, ort_runner.Config(str(model), 1, 1, 1, args.workload_raw_duration / 2, 1.0))
    # ONNX Runtime's raw rate right before every stack, whatever its runtime: how fast the machine ran then, so that
    # stacks measured minutes apart on a drifting machine can be compared (report_data.openvino_end_to_end).
    reference = raw if runtime == DEFAULT_RUNTIME else raw_runtime.run(DEFAULT_RUNTIME, raw_cfg(model, args))
    work = Path(tempfile.mkdtemp(prefix=f"workloads-{variant}-{mode}-"))
    svc = Service(
        work,
        {
            "WORKERS": "2",
            "THREADS": "1",
            "BATCH_SIZE": "8",
            "MODEL_VARIANT": variant,
            "MODEL_DIR": str(model_dir),
            "PREPROCESS": mode,
            **(extra or {}),
        },
    )
    rows = []
    failed = False
    try:
        svc.start()
        for workload, clients in plan:
            name = run_name(workload, variant, mode, clients, extra)
            profile = args.out / "pyspy" / name if clients >= 8 and getattr(args, "out", None) else None
            row = measure(svc, name, workloads[workload], clients, args.workload_duration, profile)
            row.update(
                workload=workload,
                variant=variant,
                preprocess=mode,
                clients=clients,
                settings=extra or {},
                runtime=runtime,
                raw_img_s=raw["img_s"],
                raw_onnxruntime_img_s=reference["img_s"],
                raw_b1_p50_ms=raw_b1["p50_ms"],
                vs_raw=round(row["ok_per_s"] / raw["img_s"], 3) if raw["img_s"] else None,
            )
            rows.append(row)
            print(format_table([row], COLUMNS), flush=True)
    except Exception as exc:  # one broken stack must not lose the others' results
        rows.append(
            {"name": f"{variant}-{mode}{settings_suffix(extra)}", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        )
        print(f"{variant}-{mode} failed: {exc} (its logs are kept in {work})", file=sys.stderr)
        failed = True
    finally:
        svc.stop()
        if not failed:  # a failed stack's folder holds the logs its error points to
            shutil.rmtree(work, ignore_errors=True)
    if not failed:  # ONNX Runtime's raw rate again: how far the machine's speed moved during the stack (run_noise)
        after = raw_runtime.run(DEFAULT_RUNTIME, raw_cfg(model, args))["img_s"]
        for row in rows:
            row["raw_onnxruntime_after_img_s"] = after
    return rows


def run(args: argparse.Namespace, out: Path, only: list[str] | None = None) -> dict[str, Any]:
    """Every stack of PLAN whose variant is present (`only`: of those runs, by name); writes <out>/workloads.json."""
    args.out = out  # py-spy's collapsed stacks go to <out>/pyspy/<run>/
    present = artifacts.variants(artifacts.model_dir(args.model_dir))
    workloads = {"small": photo_bytes(), "12mp": phone_photos()}
    rows: list[dict[str, Any]] = []
    for variant, mode, plan, extra in PLAN:
        chosen = [(w, c) for w, c in plan if not only or run_name(w, variant, mode, c, extra) in only]
        if variant in present and chosen:
            rows += run_stack(variant, mode, chosen, args, workloads, extra)
    data = {
        "machine": machine.describe(),
        "settings": {"duration": args.workload_duration, "raw_duration": args.workload_raw_duration},
        "photos_mib": {k: round(sum(len(d) for _, d in v) / len(v) / 2**20, 2) for k, v in workloads.items()},
        "runs": rows,
    }
    write_json(out / "workloads.json", data)
    print(format_table([r for r in rows if "error" not in r], COLUMNS))
    print(f"wrote {out / 'workloads.json'}")
    return data


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workload-duration",
        dest="workload_duration",
        type=float,
        default=30,
        help="seconds of each workload run (default 30)",
    )
    p.add_argument(
        "--workload-raw-duration",
        dest="workload_raw_duration",
        type=float,
        default=10,
        help="seconds of raw ORT before each workload stack (default 10)",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", help="folder for workloads.json (default: newest with bench.json)")
    p.add_argument("--model-dir", help="MODEL_DIR (default MODEL_DIR or model/artifacts)")
    p.add_argument("--quick", action="store_true", help="3 s runs, 2 s raw; results in a temp folder")
    p.add_argument(
        "--only", nargs="+", metavar="RUN", help="these runs only, by name (small-int8-keras-c8, …); a temp folder"
    )
    add_arguments(p)
    args = p.parse_args()
    if unknown := set(args.only or ()) - set(run_names()):
        raise SystemExit(f"no run named {', '.join(sorted(unknown))}; the runs: {' '.join(run_names())}")
    if args.quick:
        args.workload_duration, args.workload_raw_duration = 3, 2
    out = (
        Path(args.results_dir)
        if args.results_dir
        else (Path(tempfile.mkdtemp(prefix="workloads-")) if args.quick or args.only else bench_run_of_this_machine())
    )
    if out is None:
        raise SystemExit(
            "no results folder with this machine's bench.json: run `make bench` first, or pass --results-dir"
        )
    run(args, out, args.only)


if __name__ == "__main__":
    main()
