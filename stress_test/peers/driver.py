"""This service (on ONNX Runtime, and on OpenVINO) against BentoML, Ray Serve and MLServer serving the same model,
side by side in one run.

Each system serves the model card's served ONNX file with the same preprocessing (model/preprocess.py), 2
replicas × 1 intra-op thread and max batch 8, started the way its own documentation starts it. Only the measured
system runs: each is started for its turn and stopped after it (idle, Ray Serve's processes alone keep part of a core
busy, which would fall on whichever system is measured beside them). The same closed-loop load
(stress_test/peers/load.py) at 1, 8 and 64 clients goes to each in turn, over rounds, so that a shared machine's
noise falls on every system alike.
Raw ONNX Runtime (stress_test/ort_runner.py, no HTTP) of the same configuration is measured in the same run, and raw
OpenVINO (stress_test/openvino_runner.py) when this service ran on it.
Writes peers.json to the newest stress_test/results/<timestamp>/ holding a bench.json (else a new one) and prints the
table.

  python -m stress_test.peers.driver                  # 2 rounds x 15 s per load (~14 min with startups)
  python -m stress_test.peers.driver --quick          # 2 rounds x 6 s per load
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
from stress_test.peers.systems import OURS_RUNTIME, PEERS_RUNTIME, ROOT, named_system
from stress_test.photos import photo_bytes
from stress_test.results import run_dir_of_this_machine, write_json

REPLICAS, THREADS, MAX_BATCH = 2, 1, 8
START_TIMEOUT_S = 300


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--systems",
        default="ours,ours_openvino,bentoml,ray,mlserver",
        help="comma list (default: this service on ONNX Runtime and on OpenVINO, and the three peers)",
    )
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


# Runs in a process of its own; its arguments arrive as one JSON document, never spliced into the code.
RAW_CODE = """
import json, sys
from stress_test import ort_runner, raw_runtime
runtime, model, duration, warmup, configs = json.loads(sys.argv[1])
rows = [raw_runtime.run(runtime, ort_runner.Config(model, w, t, b, duration, warmup)) for w, t, b in configs]
print(json.dumps(rows))
"""


def raw_runtime(runtime: str, model: Path, duration: float, warmup: float) -> list[dict[str, Any]]:
    """raw_runtime's figures (no HTTP) for the served configuration (2×1, batch 8) and a lone request's (1×1,
    batch 1), on `runtime`, in a process of its own; each row's `runtime` names the runtime and its version."""
    configs = [(REPLICAS, THREADS, MAX_BATCH), (1, 1, 1)]
    argument = json.dumps([runtime, str(model), duration, warmup, configs])
    out = subprocess.run(
        [sys.executable, "-c", RAW_CODE, argument], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def start(system: Any, entry: dict[str, Any], tmp: Path, model_dir: Path, photo: bytes) -> Any:
    """The system's target once it answers, or None: the failure is recorded with its error text (and the system
    is left out of the later rounds) while the others go on."""
    t0 = time.monotonic()
    try:
        target = system.start(tmp, model_dir, photo, START_TIMEOUT_S)
    except Exception as exc:
        entry["status"], entry["error"] = "failed", f"{type(exc).__name__}: {exc}"
        print(f"{system.name} failed: {entry['error']}", file=sys.stderr, flush=True)
        system.stop()
        return None
    entry["status"] = "ok"
    entry.setdefault("startup_s", []).append(round(time.monotonic() - t0, 1))
    print(f"{system.name}: answering after {entry['startup_s'][-1]} s", flush=True)
    return target


def in_turn(systems: list, tmp: Path, model_dir: Path, photos: list, args: argparse.Namespace) -> dict[str, Any]:
    """Every load on every system, round after round, each system running alone: started for its turn, stopped
    after it. Each load's figures are over all its rounds (img/s over the summed windows, percentiles over all
    requests)."""
    entries = {s.name: {"request": s.request, "version": s.version(), "loads": {}} for s in systems}
    samples: dict[tuple[str, int], list] = {}
    cpu: dict[tuple[str, int], float] = {}
    windows: dict[tuple[str, int], int] = {}  # rounds measured: fewer for a system that failed in a later round
    for rnd in range(args.rounds):
        for system in systems:
            entry = entries[system.name]
            if entry.get("status") == "failed":
                continue
            target = start(system, entry, tmp, model_dir, photos[0][1])
            if target is None:
                continue
            try:
                for clients in args.loads:
                    probe = partial(session_cpu_seconds, system.session)
                    load, cpu_s = completions(target, photos, clients, args.duration, args.warmup, probe=probe)
                    samples.setdefault((system.name, clients), []).extend(load)
                    cpu[(system.name, clients)] = cpu.get((system.name, clients), 0.0) + (cpu_s or 0.0)
                    windows[(system.name, clients)] = windows.get((system.name, clients), 0) + 1
                    figures = summary(clients, args.duration, load, cpu_s)
                    print(f"round {rnd + 1} {system.name:>8} {clients:>3} clients: {json.dumps(figures)}", flush=True)
            finally:
                system.stop()
    for (name, clients), load in samples.items():
        seconds = args.duration * windows[(name, clients)]
        entries[name]["loads"][str(clients)] = summary(clients, seconds, load, cpu[(name, clients)])
    return entries


def main() -> None:
    args = parse_args()
    args.loads = [int(x) for x in args.loads.split(",") if x.strip()]
    try:
        systems = [named_system(name) for name in args.systems.split(",") if name]
    except ValueError as exc:
        sys.exit(f"--systems: {exc}")
    model_dir = artifacts.model_dir(args.model_dir).resolve()
    card = artifacts.card(model_dir)
    served = card.get("serve", "fp32")
    model = model_dir / card["variants"][served]["file"]
    photos = photo_bytes()
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
            "alone": True,  # only the measured system runs
        },
        "model": {"file": model.name, "variant": served, "sha256": card["variants"][served].get("sha256")},
        "machine": {"cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
        "systems": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        try:
            data["systems"] = in_turn(systems, Path(tmp), model_dir, photos, args)
        finally:
            for system in systems:
                system.stop()
    if not args.skip_raw:  # ONNX Runtime always (the peers run it), and the runtime of every other "ours"
        for runtime in sorted({PEERS_RUNTIME, *(OURS_RUNTIME[n] for n in data["systems"] if n in OURS_RUNTIME)}):
            data[f"raw_{runtime}"] = raw_runtime(runtime, model, min(args.duration, 10.0), 2.0)
    data["machine"]["loadavg_at_end"] = os.getloadavg()
    data["verdicts"] = {name: verdict(data, name) for name in data["systems"] if name in OURS_RUNTIME}
    out = Path(args.out) if args.out else run_dir_of_this_machine() / "peers.json"
    write_json(out, data)
    print("\n" + peers_section(data))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
