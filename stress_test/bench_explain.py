"""What class activation heatmaps cost: per image when asked, and when not asked.

Three arms, run by the worker's own Classifier (model/classifier.py) on the same batch of real photos, interleaved
round by round so all of them see the same machine load:
  no_features   the same weights, graph without the `features` output (the model as converted before heatmaps)
  not_asked     the served graph, no item asks: the run fetches probabilities only
  explain       the served graph, every item asks: the run also fetches the feature map, and each item gets its
                7 x 7 map (cam.py) rounded into the JSON lists the worker sends
Costs are paired per-round differences (mean and 95% interval) of wall time and, less sensitive to other load on
the machine, of this process's CPU time (with 1 intra-op thread ONNX Runtime computes on the calling thread);
`cam_only_us` times the map arithmetic alone.

  .venv/bin/python -m stress_test.bench_explain            # fp32 + int8, batch 1 and 8, ~2 min on 2 cores
  .venv/bin/python -m stress_test.bench_explain --quick    # smoke run, seconds; JSON to a temp folder
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from resnet_common import cam
from resnet_common.repository_layout import CARD_NAME

from stress_test import artifacts
from stress_test.photos import batch_of
from stress_test.service_code import service_module
from stress_test.results import format_table, run_dir_of_this_machine, write_json

ARMS = ("no_features", "not_asked", "explain")
COLUMNS = [
    ("variant", "variant"),
    ("batch", "B"),
    ("no_features_ms", "no features ms/img"),
    ("not_asked_ms", "not asked ms/img"),
    ("not_asked_delta_ms", "Δ not asked"),
    ("not_asked_ci_ms", "95% CI"),
    ("explain_ms", "explain ms/img"),
    ("explain_delta_ms", "Δ explain"),
    ("explain_ci_ms", "95% CI"),
    ("not_asked_cpu_delta_ms", "Δ not asked CPU"),
    ("not_asked_cpu_ci_ms", "95% CI"),
    ("explain_cpu_delta_ms", "Δ explain CPU"),
    ("explain_cpu_ci_ms", "95% CI"),
    ("cam_only_us", "map alone µs/img"),
    ("rounds", "rounds"),
]


def _worker_modules():
    classifier, settings = (service_module("model", name) for name in ("classifier", "settings"))
    return cam, classifier, settings


def stripped_copy(folder: Path, variant: str, dest: Path) -> Path:
    """dest/ holding the variant without its `features` output and a card that points at it."""
    import onnx

    card = artifacts.card(folder)
    model = onnx.load(str(folder / card["variants"][variant]["file"]))
    keep = [o for o in model.graph.output if o.name != "features"]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    name = f"{variant}.no-features.onnx"
    onnx.save(model, str(dest / name))
    card["variants"] = {variant: {**card["variants"][variant], "file": name, "bytes": (dest / name).stat().st_size}}
    (dest / CARD_NAME).write_text(json.dumps(card))
    return dest


def paired(deltas: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95% normal interval of per-round differences."""
    mean = statistics.fmean(deltas)
    half = 1.96 * statistics.stdev(deltas) / len(deltas) ** 0.5 if len(deltas) > 1 else float("nan")
    return mean, half


def measure(clfs: dict[str, Any], cam: Any, x: np.ndarray, rounds: int, warmup: int) -> dict[str, Any]:
    """Per-round seconds of each arm, interleaved; returns ms per image and the paired differences."""
    arrays = list(x)
    asks = {"no_features": None, "not_asked": [False] * len(arrays), "explain": [True] * len(arrays)}
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for i in range(warmup + rounds):
        for arm in ARMS:
            start, start_cpu = time.perf_counter(), time.process_time()
            preds = clfs[arm].predict_batch(arrays, 5, asks[arm])
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if i >= warmup:
                times[arm].append(elapsed)
                cpu[arm].append(elapsed_cpu)
        assert all(p.heatmap is not None for p in preds), "explain arm returned no heatmap"
    per_img = {arm: [t * 1000 / len(arrays) for t in ts] for arm, ts in times.items()}
    per_img_cpu = {arm: [t * 1000 / len(arrays) for t in ts] for arm, ts in cpu.items()}
    not_asked = paired([b - a for a, b in zip(per_img["no_features"], per_img["not_asked"])])
    explained = paired([b - a for a, b in zip(per_img["not_asked"], per_img["explain"])])
    not_asked_cpu = paired([b - a for a, b in zip(per_img_cpu["no_features"], per_img_cpu["not_asked"])])
    explained_cpu = paired([b - a for a, b in zip(per_img_cpu["not_asked"], per_img_cpu["explain"])])
    # the map arithmetic alone, on the features of this batch
    clf = clfs["explain"]
    probs, features = clf._infer(x, features=True)
    classes = probs.argmax(1)
    start, n = time.perf_counter(), 200
    for _ in range(n):
        [cam.as_lists(m) for m in clf.explainer.maps(features, classes)]
    cam_us = (time.perf_counter() - start) / n / len(arrays) * 1e6
    return {
        "rounds": rounds,
        **{f"{arm}_ms": round(statistics.median(v), 3) for arm, v in per_img.items()},
        "not_asked_delta_ms": round(not_asked[0], 3),
        "not_asked_ci_ms": round(not_asked[1], 3),
        "explain_delta_ms": round(explained[0], 3),
        "explain_ci_ms": round(explained[1], 3),
        "not_asked_cpu_delta_ms": round(not_asked_cpu[0], 3),
        "not_asked_cpu_ci_ms": round(not_asked_cpu[1], 3),
        "explain_cpu_delta_ms": round(explained_cpu[0], 3),
        "explain_cpu_ci_ms": round(explained_cpu[1], 3),
        **{f"{arm}_cpu_ms": round(statistics.median(v), 3) for arm, v in per_img_cpu.items()},
        "cam_only_us": round(cam_us, 1),
        "other_load_1m": round(os.getloadavg()[0], 2),
        "per_image_ms": per_img,
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="folder with model_card.json (default MODEL_DIR or model/artifacts)")
    p.add_argument("--variants", default="", help="comma list among fp32,int8 (default: every variant present)")
    p.add_argument("--batches", default="1,8", help="batch sizes (default 1,8)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1: the 2-core default topology)")
    p.add_argument("--rounds", type=int, default=30, help="measured rounds per arm (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first (default 3)")
    p.add_argument(
        "--out",
        help="JSON output (default: explain.json in this machine's results folder, results.run_dir_of_this_machine)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: first variant, batch 2, 3 rounds; JSON to a temp dir"
    )
    return p.parse_args()


def measure_variant(folder: Path, variant: str, args: argparse.Namespace, before: list[dict]) -> list[dict]:
    """The three arms of one variant at every batch size; progress printed under the rows `before` it."""
    cam, classifier, settings = _worker_modules()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        base = settings.Settings(MODEL_DIR=str(folder), MODEL_VARIANT=variant)
        clfs = {
            "no_features": classifier.Classifier(
                settings.Settings(MODEL_DIR=str(stripped_copy(folder, variant, Path(tmp))), MODEL_VARIANT=variant),
                threads=args.threads,
            ),
            "not_asked": classifier.Classifier(base, threads=args.threads),
            "explain": classifier.Classifier(base, threads=args.threads),
        }
        for clf in clfs.values():
            clf.initialize()
        assert clfs["no_features"].explainer is None and clfs["explain"].explainer is not None
        for batch in [int(b) for b in args.batches.split(",") if b]:
            row = {
                "variant": variant,
                "batch": batch,
                "threads": args.threads,
                **measure(clfs, cam, batch_of(batch), args.rounds, args.warmup),
            }
            rows.append(row)
            shown = before + rows
            print(
                format_table(shown, COLUMNS).splitlines()[-1] if len(shown) > 1 else format_table(shown, COLUMNS),
                flush=True,
            )
        for clf in clfs.values():
            clf.finalize()
    return rows


def main() -> None:
    args = parse_args()
    folder = artifacts.model_dir(args.model_dir)
    present = artifacts.variants(folder)
    wanted = [v for v in args.variants.split(",") if v] or list(present)
    if args.quick:
        wanted, args.batches, args.rounds, args.warmup = wanted[:1], "2", 3, 1
    if not present or any(v not in present for v in wanted):
        raise SystemExit(f"missing model variant(s) {wanted} in {folder}: found {sorted(present)}")
    if artifacts.card(folder).get("feature_map", {}).get("output") != "features":
        raise SystemExit(f"the model in {folder} has no `features` output: convert it again (make model)")
    rows = []
    for variant in wanted:
        rows += measure_variant(folder, variant, args, rows)
    print(
        "\nΔ not asked: served graph without fetching features minus the graph without the output (target: "
        "nothing measurable, i.e. the 95% interval includes 0 or is far below 1 ms);\nΔ explain: every item "
        "explained minus none (target <= 1 ms per image)."
    )
    if args.out:
        out = Path(args.out)
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="bench-explain-quick-")) / "explain.json"
    else:
        out = run_dir_of_this_machine() / "explain.json"
    write_json(
        out,
        {
            "model_dir": str(folder),
            "card_parity_features": artifacts.card(folder).get("parity", {}).get("features"),
            "rows": rows,
            "settings": vars(args),
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
