"""The HTTP tier on a core of its own: how close the workers come to raw ONNX Runtime when nothing shares their core.

In the workloads (2 workers × 1 thread on a 2-core machine) nginx, gunicorn, Redis and the load generator take
their CPU from the cores inference runs on, so end-to-end / raw there is bounded by the CPU account, not by how
well the workers use their cores. This run separates the two: it gives the model service WORKERS × THREADS cores of
its own (the first usable ones) and everything else — supervisord, Redis, gunicorn, nginx and this load generator —
the rest, every thread pinned (stress_test/pinning.py); raw ONNX Runtime of the same workers × threads runs pinned
to the model's cores before the first round and after each, the stack idle beside it. What it measures is how a deployment whose API runs
on other cores or machines (the Kubernetes layout: API pods and model pods) does against raw.

Per variant, one stack as `make run` serves it; closed-loop clients through nginx, unique bytes per request, each
client from its own loopback address:
- `predict`: /predict, small photos, `--clients` clients: img/s against raw at BATCH_SIZE;
- `lone` (fp32): /predict, 1 client: p50 against raw batch 1's p50;
- `fp32` (fp32): V2 FP32 preprocessed tensors, `--fp32-clients` clients: img/s against raw.

  python -m stress_test.split_cores [--rounds 2] [--duration 15]     # about 7 min; writes split_cores.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import psutil

from stress_test import artifacts, bench_v2, closed_loop, machine, ort_runner
from stress_test.pinning import cpu_list, pin, this_thread_on
from stress_test.results import format_table, run_dir_of_this_machine, write_json
from stress_test.service import Service

PLAN = {"fp32": ("predict", "lone", "fp32"), "int8": ("predict",)}  # the loads of each variant's stack
TARGETS = {"predict": {"fp32": 0.90, "int8": 0.80}, "fp32": {"fp32": 0.95}}  # × raw: the workloads' own goals
LONE_GAP_TARGET_MS = 5.0
COLUMNS = [
    ("variant", "variant"),
    ("round", "round"),
    ("load", "load"),
    ("clients", "clients"),
    ("ok_per_s", "img/s"),
    ("p50_ms", "p50 ms"),
    ("model_cores_busy", "model cores busy"),
    ("http_cores_busy", "other cores busy"),
]


def split(usable: set[int], model_cores: int) -> tuple[set[int], set[int]]:
    """The first `model_cores` usable cores for the model service, the rest for everything else."""
    ordered = sorted(usable)
    if len(ordered) <= model_cores:
        raise SystemExit(f"{len(ordered)} usable cores: the model's {model_cores} and at least one more are needed")
    return set(ordered[:model_cores]), set(ordered[model_cores:])


def busy(before: list, after: list, cores: set[int]) -> float:
    """Mean busy fraction of `cores` between two psutil.cpu_times(percpu=True) readings."""
    shares = []
    for core in sorted(cores):
        a, b = before[core], after[core]
        total = sum(b) - sum(a)
        idle = (b.idle - a.idle) + (getattr(b, "iowait", 0.0) - getattr(a, "iowait", 0.0))
        shares.append((total - idle) / total if total > 0 else 0.0)
    return round(sum(shares) / len(shares), 3)


def load(svc: Service, name: str, args: argparse.Namespace, warmup: float, duration: float) -> dict[str, Any]:
    """One closed-loop load through nginx: images answered per second, and p50 where the client times requests."""
    if name == "fp32":
        row = bench_v2.closed_loop(svc.stack, "fp32", args.fp32_clients, duration, warmup)
        return {"clients": args.fp32_clients, "ok_per_s": row["ok_per_s"], "failed": row["failed"]}
    clients = 1 if name == "lone" else args.clients
    row = closed_loop.run(svc.url, clients, duration, warmup)
    return {"clients": clients, "ok_per_s": row["ok_per_s"], "p50_ms": row["p50_ms"], "statuses": row["statuses"]}


def measure_variant(
    variant: str, model: Path, cores: tuple[set[int], set[int]], args: argparse.Namespace
) -> dict[str, Any]:
    """One stack of `variant` pinned as described: raw, then `args.rounds` rounds of every load of PLAN, each followed
    by raw again."""
    model_cores, http_cores = cores
    env = {
        "WORKERS": str(args.workers),
        "THREADS": str(args.threads),
        "BATCH_SIZE": str(args.batch),
        "MODEL_VARIANT": variant,
        "MODEL_DIR": str(model.parent),
        **settings(args),
    }
    svc = Service(
        Path(tempfile.mkdtemp(prefix=f"split-cores-{variant}-")), env, ["taskset", "-c", cpu_list(http_cores)]
    )
    windows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    with this_thread_on(http_cores):  # the load generator's threads are started from this one
        try:
            svc.start()
            pinned = pin(svc.stack.program_pids("model"), model_cores)
            for name in PLAN[variant]:  # unrecorded: ONNX Runtime's arena and kernels for every batch size
                load(svc, name, args, 1.0, args.settle)
            raw.append(raw_runs(variant, model, model_cores, args))  # before the first round, and after each
            for round_ in range(1, args.rounds + 1):
                for name in PLAN[variant]:
                    before = psutil.cpu_times(percpu=True)
                    row = load(svc, name, args, args.warmup, args.duration)
                    after = psutil.cpu_times(percpu=True)
                    row |= {
                        "variant": variant,
                        "round": round_,
                        "load": name,
                        "model_cores_busy": busy(before, after, model_cores),
                        "http_cores_busy": busy(before, after, http_cores),
                    }
                    windows.append(row)
                    print(format_table([row], COLUMNS).splitlines()[-1], flush=True)
                raw.append(raw_runs(variant, model, model_cores, args))
        finally:
            svc.stop()
    return summarize(variant, windows, raw) | {"threads_pinned_to_model_cores": pinned}


def raw_runs(variant: str, model: Path, cores: set[int], args: argparse.Namespace) -> dict[str, Any]:
    """Raw ONNX Runtime on the model's cores (the stack idle beside it): the stack's configuration, and for the lone
    request one process at batch 1."""
    with this_thread_on(cores):  # raw ONNX Runtime's processes inherit it
        batch = ort_runner.run(ort_runner.Config(str(model), args.workers, args.threads, args.batch, args.raw_duration))
        lone = "lone" in PLAN[variant]
        batch_1 = ort_runner.Config(str(model), 1, args.threads, 1, args.raw_duration / 2)
        return {"batch": batch, "batch_1": ort_runner.run(batch_1) if lone else None}


def summarize(variant: str, windows: list[dict[str, Any]], raw: list[dict[str, Any]]) -> dict[str, Any]:
    """Each load over the rounds, every round against raw measured before and after it (the mean of the two: the
    machine's speed drifts), the lone p50 against raw batch 1's; `noise`: the most raw moved between two of its
    measurements, below which two figures of this run are level."""
    rates = [r["batch"]["img_s"] for r in raw]
    around = {k: (rates[k - 1] + rates[k]) / 2 for k in range(1, len(rates))}  # round k: raw before and after it
    noise = max((abs(b / a - 1) for a, b in zip(rates, rates[1:]) if a), default=0.0)
    out: dict[str, Any] = {
        "raw_img_s": round(statistics.mean(rates), 3),
        "noise": round(noise, 3),
        "raw": raw,
        "windows": windows,
        "loads": {},
    }
    for name in PLAN[variant]:
        rows = [w for w in windows if w["load"] == name]
        entry: dict[str, Any] = {
            "clients": rows[0]["clients"],
            "ok_per_s": round(statistics.mean(w["ok_per_s"] for w in rows), 3),
            "model_cores_busy": round(statistics.mean(w["model_cores_busy"] for w in rows), 3),
            "http_cores_busy": round(statistics.mean(w["http_cores_busy"] for w in rows), 3),
        }
        if name == "lone":
            b1 = [r["batch_1"]["p50_ms"] for r in raw]
            gaps = [w["p50_ms"] - (b1[w["round"] - 1] + b1[w["round"]]) / 2 for w in rows]
            gap = statistics.mean(gaps)
            entry |= {
                "p50_ms": round(statistics.mean(w["p50_ms"] for w in rows), 2),
                "raw_b1_p50_ms": round(statistics.mean(b1), 2),
                "gap_ms": round(gap, 2),
                "target_ms": LONE_GAP_TARGET_MS,
                "met": gap <= LONE_GAP_TARGET_MS,
            }
        else:
            target = TARGETS[name][variant]
            ratio = statistics.mean(w["ok_per_s"] / around[w["round"]] for w in rows)
            entry |= {"vs_raw": round(ratio, 3), "target": target, "met": ratio >= target}
        out["loads"][name] = entry
    return out


def settings(args: argparse.Namespace) -> dict[str, str]:
    """The --setting NAME=VALUE pairs."""
    pairs = [text.partition("=") for text in args.setting]
    if any(not name or not sep for name, sep, _ in pairs):
        raise SystemExit(f"--setting takes NAME=VALUE, not {args.setting}")
    return {name: value for name, _, value in pairs}


def command(args: argparse.Namespace) -> str:
    """The command line that repeats this run (its results folder aside)."""
    options = [
        f"--{name.replace('_', '-')} {value}"
        for name, given in vars(args).items()
        if name != "results_dir"
        for value in (given if isinstance(given, list) else [given])
    ]
    return " ".join(["python -m stress_test.split_cores", *options])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8, help="/predict clients (default 8)")
    p.add_argument("--fp32-clients", type=int, default=8, help="V2 FP32 clients of 1 image each (default 8)")
    p.add_argument("--workers", type=int, default=1, help="model processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="threads per model process (default 1)")
    p.add_argument("--batch", type=int, default=8, help="BATCH_SIZE, and raw's batch (default 8)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per measured window (default 15)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--settle", type=float, default=6.0, help="unrecorded seconds of each load first (default 6)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of raw and every load (default 2)")
    p.add_argument("--raw-duration", type=float, default=8.0, help="seconds of raw ONNX Runtime per round")
    p.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE", help="for both stacks, e.g. READ_AHEAD=0"
    )
    p.add_argument("--results-dir", help="folder for split_cores.json (default: this machine's newest run)")
    args = p.parse_args()
    present = artifacts.variants(artifacts.model_dir())
    if "fp32" not in present:
        raise SystemExit(f"no converted model in {artifacts.model_dir()}: run `make model` (or set MODEL_DIR)")
    cores = split(set(psutil.Process().cpu_affinity()), args.workers * args.threads)
    print(f"model service on cores {cpu_list(cores[0])}; everything else on {cpu_list(cores[1])}", flush=True)
    variants = {v: measure_variant(v, present[v], cores, args) for v in PLAN if v in present}
    out_dir = Path(args.results_dir) if args.results_dir else run_dir_of_this_machine()
    data = {
        "command": command(args),
        "settings": settings(args),
        "machine": machine.describe(),
        "model_cores": sorted(cores[0]),
        "other_cores": sorted(cores[1]),
        "workers": args.workers,
        "threads": args.threads,
        "batch_size": args.batch,
        "variants": variants,
    }
    write_json(out_dir / "split_cores.json", data)
    for variant, v in variants.items():
        for name, entry in v["loads"].items():
            figure = f"gap {entry['gap_ms']} ms" if name == "lone" else f"{entry['vs_raw']} of raw"
            print(f"{variant} {name}: {entry['ok_per_s']} img/s, {figure} (raw {v['raw_img_s']} img/s)")
    print(f"saved {out_dir / 'split_cores.json'}")


if __name__ == "__main__":
    main()
