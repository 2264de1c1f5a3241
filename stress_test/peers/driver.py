"""This service against BentoML, Ray Serve and MLServer serving the same model, side by side in one run.

Each system serves the model card's served ONNX file with the same preprocessing (model/preprocess.py), 2
replicas × 1 intra-op thread and max batch 8, started the way its own documentation starts it. All run at once
(the idle ones cost little); the same closed-loop load (stress_test/peers/load.py) at 1, 8 and 64 clients goes to
one system at a time, interleaved over rounds so that a shared machine's noise falls on every system alike.
Raw ONNX Runtime (stress_test/ort_runner.py, no HTTP) of the same configuration is measured in the same run.
Writes peers.json to a new stress_test/results/<timestamp>/ folder and prints the table.

  python -m stress_test.peers.driver                  # 2 rounds x 15 s per load (~10 min with startups)
  python -m stress_test.peers.driver --quick          # 2 rounds x 6 s per load (~5 min)
  python -m stress_test.peers.driver --systems ours,bentoml --loads 1,8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from stress_test import artifacts
from stress_test.peers.load import completions, session_cpu_seconds, summary
from stress_test.peers.report import peers_section, verdict
from stress_test.peers.systems import PEER_SYSTEMS, ROOT, Ours
from stress_test.photos import photo_bytes
from stress_test.results import latest_run_dir, new_run_dir, write_json

REPLICAS, THREADS, MAX_BATCH = 2, 1, 8
START_TIMEOUT_S = 300


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", default="ours,bentoml,ray,mlserver", help="comma list (default: all four)")
    p.add_argument("--loads", default="1,8,64", help="client counts (default 1,8,64)")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per load and round (default 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring each load (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds over all systems (default 2)")
    p.add_argument("--skip-raw", action="store_true", help="do not measure raw ONNX Runtime")
    p.add_argument("--model-dir", help="folder with model_card.json (default MODEL_DIR or model/artifacts)")
    p.add_argument("--out", help="JSON output (default stress_test/results/<timestamp>/peers.json)")
    p.add_argument("--quick", action="store_true", help="6 s per load after 2 s warm-up")
    args = p.parse_args()
    if args.quick:
        args.duration, args.warmup = 6.0, 2.0
    return args


def raw_onnxruntime(model: Path, duration: float, warmup: float) -> list[dict[str, Any]]:
    """ort_runner's figures for the served configuration (2×1, batch 8) and a lone request's (1×1, batch 1)."""
    code = (
        "import json, onnxruntime as ort\nfrom stress_test import ort_runner\n"
        f"rows = [ort_runner.run(ort_runner.Config({str(model)!r}, w, t, b, {duration}, {warmup}))"
        f" for w, t, b in (({REPLICAS}, {THREADS}, {MAX_BATCH}), (1, 1, 1))]\n"
        "print(json.dumps([{**r, 'version': 'onnxruntime ' + ort.__version__} for r in rows]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_all(systems: list, tmp: Path, model_dir: Path, photo: bytes) -> dict[str, Any]:
    """Start every system (one after another); a failure is recorded with its error text and the others go on."""
    entries: dict[str, Any] = {}
    for system in systems:
        entry: dict[str, Any] = {"request": system.request, "version": system.version(), "loads": {}}
        t0 = time.monotonic()
        try:
            entry["target"] = system.start(tmp, model_dir, photo, START_TIMEOUT_S)
            entry["session"] = system.session
            entry["status"], entry["startup_s"] = "ok", round(time.monotonic() - t0, 1)
            print(f"{system.name}: answering after {entry['startup_s']} s", flush=True)
        except Exception as exc:  # recorded, and the run goes on with the next system
            entry["status"], entry["error"] = "failed", f"{type(exc).__name__}: {exc}"
            print(f"{system.name} failed: {entry['error']}", file=sys.stderr, flush=True)
            system.stop()
        entries[system.name] = entry
    return entries


def interleaved(entries: dict[str, Any], photos: list, args: argparse.Namespace) -> None:
    """Every load on every running system, round after round, so a shared machine's noise falls on all alike;
    each load's figures are over all its rounds (img/s over the summed windows, percentiles over all requests)."""
    running = {name: e for name, e in entries.items() if e["status"] == "ok"}
    samples: dict[tuple[str, int], list] = {}
    cpu: dict[tuple[str, int], float] = {}
    for rnd in range(args.rounds):
        for clients in args.loads:
            for name, entry in running.items():
                probe = partial(session_cpu_seconds, entry["session"])
                load, cpu_s = completions(entry["target"], photos, clients, args.duration, args.warmup, probe=probe)
                samples.setdefault((name, clients), []).extend(load)
                cpu[(name, clients)] = cpu.get((name, clients), 0.0) + (cpu_s or 0.0)
                figures = summary(clients, args.duration, load, cpu_s)
                print(f"round {rnd + 1} {name:>8} {clients:>3} clients: {json.dumps(figures)}", flush=True)
    for (name, clients), load in samples.items():
        figures = summary(clients, args.duration * args.rounds, load, cpu[(name, clients)])
        running[name]["loads"][str(clients)] = figures


def main() -> None:
    args = parse_args()
    args.loads = [int(x) for x in args.loads.split(",") if x.strip()]
    model_dir = artifacts.model_dir(args.model_dir).resolve()
    card = artifacts.card(model_dir)
    served = card.get("serve", "fp32")
    model = model_dir / card["variants"][served]["file"]
    photos = photo_bytes()
    systems = [Ours() if name == "ours" else PEER_SYSTEMS[name]() for name in args.systems.split(",") if name]
    data: dict[str, Any] = {
        "settings": {
            "loads": args.loads,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "replicas": REPLICAS,
            "threads": THREADS,
            "max_batch": MAX_BATCH,
            "photos": [name for name, _ in photos],
            "quick": args.quick,
        },
        "model": {"file": model.name, "variant": served, "sha256": card["variants"][served].get("sha256")},
        "machine": {"cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
        "systems": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        try:
            data["systems"] = start_all(systems, Path(tmp), model_dir, photos[0][1])
            interleaved(data["systems"], photos, args)
        finally:
            for system in systems:
                system.stop()
    for entry in data["systems"].values():
        entry.pop("target", None)
        entry.pop("session", None)
    if not args.skip_raw:
        data["raw_onnxruntime"] = raw_onnxruntime(model, min(args.duration, 10.0), 2.0)
    data["machine"]["loadavg_at_end"] = os.getloadavg()
    data["verdict"] = verdict(data)
    out = Path(args.out) if args.out else (latest_run_dir("bench.json") or new_run_dir()) / "peers.json"
    write_json(out, data)
    print("\n" + peers_section(data))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
