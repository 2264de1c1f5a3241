"""Model benchmark: the original app's Keras baseline and raw ONNX Runtime over workers x threads x batch, in one run.

Prints images/s, p50/p95 batch latency, the ratio to the Keras baseline and the fraction of the machine's fp32
peak (FLOPs counted from the ONNX graph), and writes everything to stress_test/results/<timestamp>/bench.json
for run_matrix.py and make_report.py. Runs in .venv (ONNX Runtime) or .venv-convert (also TensorFlow); the
Keras baseline always runs as a subprocess of the TensorFlow environment. Where OpenVINO is installed (.venv), each
configuration also runs on it, right after ONNX Runtime's (openvino_runner.py; --skip-openvino to leave it out),
into bench.json's "openvino".

  python -m stress_test.bench_model                 # full run (~3-5 min on 2 cores)
  python -m stress_test.bench_model --quick         # smoke run, a few seconds, no Keras
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
import sys
from pathlib import Path
from typing import Any


from stress_test import artifacts
from stress_test import decode_profile
from stress_test import machine
from stress_test import openvino_runner
from stress_test import ort_runner
from stress_test.results import format_table, new_run_dir, progress_line, write_json

HERE = Path(__file__).resolve().parent
KERAS_PYTHON = artifacts.REPO / ".venv-convert" / "bin" / "python"
COLUMNS = [
    ("variant", "variant"),
    *ort_runner.RUN_COLUMNS,
    ("per_image_ms", "ms/img"),
    ("x_baseline", "x keras"),
    ("peak_pct", "% peak"),
    ("peak_pct_measured", "% meas."),
    ("rss_mb_max", "RSS MB"),
    ("load_s_max", "load s"),
    ("other_load_cores", "other load"),
]


def csv_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def count_gflops(model: Path) -> tuple[float, str]:
    """GFLOPs per image of the served graph, counted by the conversion's own flops.py (needs `onnx`)."""
    spec = importlib.util.spec_from_file_location("conversion_flops", HERE.parent / "conversion" / "flops.py")
    flops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flops)
    return flops.gflops_per_image(
        model
    ), "counted from the ONNX graph by conversion/flops.py (Conv/Gemm/MatMul MACs x 2)"


def keras_baseline(folder: Path, keras_python: Path, images: int) -> dict[str, Any] | None:
    """Run keras_baseline.py in the TensorFlow venv; None (with a note on stderr) when it cannot run."""
    if not keras_python.exists():
        print(f"baseline skipped: {keras_python} not found", file=sys.stderr)
        return None
    weights = artifacts.keras_weights(folder)
    cmd = [
        str(keras_python),
        "-m",
        "stress_test.keras_baseline",
        "--images",
        str(images),
        "--weights",
        str(weights or ""),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=artifacts.REPO)
    if out.returncode != 0:
        print(f"baseline failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model-dir", help="folder with model_card.json and the .onnx files (default MODEL_DIR or model/artifacts)"
    )
    p.add_argument("--variants", default="", help="comma list among fp32,int8 (default: every variant present)")
    p.add_argument("--workers", default="1,2", help="process counts (default 1,2)")
    p.add_argument(
        "--threads", default="", help="intra-op threads per process (default: all with workers x threads <= cores)"
    )
    p.add_argument("--batches", default="1,4,8", help="batch sizes (default 1,4,8)")
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per configuration (default 8)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per configuration (default 2)")
    p.add_argument(
        "--spin", choices=["auto", "on", "off"], default="auto", help="ORT thread spinning (auto: off when workers > 1)"
    )
    p.add_argument("--baseline-images", type=int, default=40, help="timed Keras predict calls (default 40)")
    p.add_argument("--skip-baseline", action="store_true", help="do not run the Keras baseline")
    p.add_argument("--skip-openvino", action="store_true", help="do not add the raw OpenVINO rows")
    p.add_argument("--keras-python", default=str(KERAS_PYTHON), help="python of the TensorFlow venv")
    p.add_argument("--out", help="JSON output (default stress_test/results/<timestamp>/bench.json)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: first variant, 1x1 batch 1, 1 s, no baseline; JSON to a temp dir unless --out",
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    folder = artifacts.model_dir(args.model_dir)
    models = artifacts.variants(folder)
    wanted = [v for v in args.variants.split(",") if v] or list(models)
    if args.quick:
        wanted, args.workers, args.threads, args.batches = wanted[:1], "1", "1", "1"
        args.duration, args.warmup, args.skip_baseline = 1.0, 0.3, True
    if not models or any(v not in models for v in wanted):
        raise SystemExit(
            f"missing model variant(s) {wanted} in {folder}: found {sorted(models)}; run the conversion first"
        )
    info = machine.describe()
    info["fma_probe"] = None if args.quick else machine.fma_probe()
    gflops, gflops_how = count_gflops(models.get("fp32", models[wanted[0]]))
    print_machine(info, gflops, gflops_how, folder)
    baseline = None if args.skip_baseline else keras_baseline(folder, Path(args.keras_python), args.baseline_images)
    if baseline:
        print(f"keras baseline: {baseline['img_s']} img/s, p50 {baseline['p50_ms']} ms ({baseline['method']})")
    ov_version = None if args.skip_openvino else openvino_runner.version()
    if not args.skip_openvino and ov_version is None:
        print("openvino rows skipped: openvino is not installed in this environment")
    rows, ov_rows = measure_grid(args, info, models, wanted, baseline, gflops, ov_version is not None)
    best = {v: max((r for r in rows if r["variant"] == v), key=lambda r: r["img_s"]) for v in wanted}
    print_summary(rows, best)
    if ov_rows:
        print(f"\nOpenVINO {ov_version} on the same files, each right after ONNX Runtime's row:")
        print(format_table(ov_rows, openvino_runner.COLUMNS))
    if args.out:
        out = Path(args.out)
    else:  # a smoke run must not become the newest results folder that matrix and report pick up
        out = (
            Path(tempfile.mkdtemp(prefix="bench-quick-")) / "bench.json" if args.quick else new_run_dir() / "bench.json"
        )
    summary = {"machine": info, "gflops_per_image": gflops, "gflops_how": gflops_how, "card": artifacts.card(folder)}
    summary |= {"baseline": baseline, "runs": rows, "openvino": ov_rows, "best": best}
    summary["settings"] = {k: v for k, v in vars(args).items()}
    write_json(out, summary)
    print(f"wrote {out}")
    decode_profile.save(folder, out.parent, quick=args.quick)  # decode cost and fast-mode agreement


def print_machine(info: dict[str, Any], gflops: float | None, gflops_how: str, folder: Path) -> None:
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['isa']}\npeak: {info['peak_formula']}")
    p = info["fma_probe"] or {}
    if p.get("gflops_all_cores"):
        print(
            f"measured FMA peak: {p['gflops_1_core']} GFLOP/s on 1 core (effective {p['effective_ghz_1_core']} GHz), "
            f"{p['gflops_all_cores']} on all cores ({p['how']})"
        )
    print(
        f"model: {gflops} GFLOP/image, {gflops_how}; card says {artifacts.card_gflops(folder)}"
        "\n(% peak of int8 rows is fp32-equivalent: the same FLOPs against the fp32 peak)"
    )


def measure_grid(
    args: argparse.Namespace,
    info: dict[str, Any],
    models: dict[str, Path],
    wanted: list[str],
    baseline: dict[str, Any] | None,
    gflops: float | None,
    with_openvino: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One raw ONNX Runtime run per variant x workers x threads x batch, progress printed as it goes; with
    `with_openvino`, each followed by the same configuration on OpenVINO (openvino_runner.beside)."""
    measured_peak = (info["fma_probe"] or {}).get("gflops_all_cores")
    spin = {"auto": None, "on": True, "off": False}[args.spin]
    rows, ov_rows = [], []
    for variant in wanted:
        for w, t, b in ort_runner.grid(
            info["cores"], csv_ints(args.workers), csv_ints(args.threads) or None, csv_ints(args.batches)
        ):
            cfg = ort_runner.Config(str(models[variant]), w, t, b, args.duration, args.warmup, spin)
            row = {"variant": variant, **ort_runner.run(cfg)}
            row["x_baseline"] = round(row["img_s"] / baseline["img_s"], 2) if baseline else None
            row["gflop_s"] = round(row["img_s"] * gflops, 1) if gflops else None
            row["peak_pct"] = (
                round(100 * row["gflop_s"] / info["peak_gflops"], 1) if gflops and info["peak_gflops"] else None
            )
            row["peak_pct_measured"] = (
                round(100 * row["gflop_s"] / measured_peak, 1) if gflops and measured_peak else None
            )
            rows.append(row)
            print(progress_line(rows, COLUMNS), flush=True)
            if with_openvino:
                ov_rows.append(openvino_runner.beside(row, cfg))
    return rows, ov_rows


def print_summary(rows: list[dict[str, Any]], best: dict[str, dict[str, Any]]) -> None:
    noisy = [r for r in rows if r["other_load_cores"] > 0.2]
    if noisy:
        print(
            f"WARNING: other processes used >0.2 cores during {len(noisy)} configuration(s) (column 'other load');"
            " those figures are low. Re-run on a quiet machine.",
            file=sys.stderr,
        )
    if len(rows) > 1:
        print("\n" + format_table(rows, COLUMNS))
    for v, r in best.items():
        print(
            f"best {v}: {r['img_s']} img/s with WORKERS={r['workers']} THREADS={r['threads']} BATCH_SIZE={r['batch']}"
            f" ({r['peak_pct']}% of the formula fp32 peak"
            + (f", {r['peak_pct_measured']}% of the measured FMA peak)" if r["peak_pct_measured"] else ")")
        )


if __name__ == "__main__":
    main()
