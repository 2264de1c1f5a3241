"""The Open Inference Protocol's cost, measured side by side in one run on the stack `make run` starts.

  python -m stress_test.bench_v2 [--clients 8] [--duration 20] [--rounds 2]

1. /predict vs V2 BYTES (batch 1, binary tensors, as tritonclient sends them): `--clients` closed-loop clients,
   each from its own loopback address (127.0.0.10, .11, …), unique bytes per request (stress_test/unique.py), the
   two alternated `--rounds` times so that drift on a shared machine hits both. Ratio: V2 / /predict.
2. V2 FP32 (the preprocessed tensor, no decoding; `--fp32-clients`, enough to fill the workers' batches) vs raw
   ONNX Runtime (stress_test/ort_runner.py) with the stack's own workers × threads and BATCH_SIZE, measured before
   the stack starts and after it stops. Ratio: V2 FP32 / raw ORT.

Prints the ratios and writes stress_test/results/<run>/bench_v2.json. Figures from a busy machine are noisy:
compare ratios from one run, never figures across runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import struct
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from stress_test import ort_runner
from stress_test.artifacts import model_dir, variants
from stress_test.closed_loop import multipart
from stress_test.photos import photo_bytes, preprocess
from stress_test.results import format_table, latest_run_dir, new_run_dir, write_json
from stress_test.unique import unique
from testkit.source_addresses import http_connection
from testkit.stack import Stack

INFER = "/v2/models/resnet50/infer"
COLUMNS = [
    ("mode", "mode"),
    ("clients", "clients"),
    ("ok_per_s", "ok/s"),
    ("failed", "failed"),
    ("api_cpu_ms", "nginx+gunicorn+redis CPU ms/answer"),
    ("model_cpu_ms", "workers CPU ms/answer"),
]


def v2_bytes_body(data: bytes) -> tuple[bytes, dict[str, str]]:
    """A batch-1 BYTES request with binary data in and out, as tritonclient builds it."""
    item = struct.pack("<I", len(data)) + data
    header = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(item)}}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    text = json.dumps(header).encode()
    return text + item, {"Inference-Header-Content-Length": str(len(text)), "Content-Type": "application/octet-stream"}


def v2_fp32_body(tensor: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """A batch-1 FP32 request (224×224×3 float32, binary)."""
    header = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [1, 224, 224, 3],
                "parameters": {"binary_data_size": tensor.nbytes},
            }
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    text = json.dumps(header).encode()
    return text + tensor.tobytes(), {"Inference-Header-Content-Length": str(len(text))}


def _client(port: int, index: int, mode: str, stop: float, start: float, out: list, run_id: str) -> None:
    """One closed-loop client from its own loopback address; appends (end time, ok) per completed request."""
    photos = photo_bytes()
    tensors = [preprocess(data) for _, data in photos] if mode == "fp32" else []
    conn = http_connection("127.0.0.1", port, index, timeout=60)
    i = 0
    while time.monotonic() < stop:
        name, data = photos[i % len(photos)]
        tag = f"{run_id}-{mode}-{index}-{i}"
        if mode == "predict":
            body, ctype = multipart(name, unique(data, tag))
            path, headers = "/predict", {"Content-Type": ctype}
        elif mode == "bytes":
            body, headers = v2_bytes_body(unique(data, tag))
            path = INFER
        else:  # a different tensor per request (one value nudged): same work, never a cache hit
            tensor = tensors[i % len(tensors)].copy()
            tensor[0, 0, 0] += (index * 1_000_003 + i) * 1e-6
            body, headers = v2_fp32_body(tensor)
            path = INFER
        i += 1
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http_connection("127.0.0.1", port, index, timeout=60)
            ok = False
        now = time.monotonic()
        if start <= now <= stop:
            out.append(ok)
    conn.close()


PROGRAMS = ("nginx", "gunicorn", "redis", "model")


def closed_loop(stack: Stack, mode: str, clients: int, duration: float, warmup: float) -> dict:
    """Successful requests per second over the window, the failures, and what the service's CPU spent per
    answer (ms, by program: nginx, gunicorn, redis; model = the workers) — a figure other load on a shared
    machine cannot distort the way it distorts throughput."""
    start = time.monotonic() + warmup
    stop = start + duration
    out: list[bool] = []
    run_id = uuid.uuid4().hex[:8]
    threads = [
        threading.Thread(target=_client, args=(stack.port, i, mode, stop, start, out, run_id), daemon=True)
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    time.sleep(max(0.0, start - time.monotonic()))
    cpu_start = stack.cpu_seconds(*PROGRAMS)
    time.sleep(max(0.0, stop - time.monotonic()))
    cpu_stop = stack.cpu_seconds(*PROGRAMS)
    for t in threads:
        t.join(duration + 70)
    ok = max(1, sum(out))
    cpu_ms = {name: round((cpu_stop[name] - cpu_start[name]) * 1000 / ok, 1) for name in PROGRAMS}
    return {
        "mode": mode,
        "clients": clients,
        "ok_per_s": round(sum(out) / duration, 3),
        "failed": out.count(False),
        "cpu_ms_per_answer": cpu_ms,
        "api_cpu_ms": round(sum(v for k, v in cpu_ms.items() if k != "model"), 1),
        "model_cpu_ms": cpu_ms["model"],
    }


def raw_ort(model: Path, workers: int, threads: int, batch: int, duration: float) -> dict:
    return ort_runner.run(ort_runner.Config(str(model), workers, threads, batch, duration_s=duration))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--fp32-clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per measured window")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--ort-duration", type=float, default=10.0)
    args = p.parse_args()
    model = variants(model_dir()).get(os.environ.get("MODEL_VARIANT", "fp32"))
    if model is None:
        raise SystemExit(f"no converted model in {model_dir()}: run `make model` (or set MODEL_DIR)")
    workers = int(os.environ.get("WORKERS") or os.cpu_count() or 1)
    threads = int(os.environ.get("THREADS") or max(1, (os.cpu_count() or 1) // workers))
    batch = int(os.environ.get("BATCH_SIZE") or 8)
    out_dir = latest_run_dir("bench.json") or new_run_dir()  # beside the raw benchmark: one run, one report

    ort_before = raw_ort(model, workers, threads, batch, args.ort_duration)
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-v2-")), workers=workers)
    rows: list[dict] = []
    try:
        stack.start()
        for _ in range(args.rounds):
            for mode in ("predict", "bytes"):
                rows.append(closed_loop(stack, mode, args.clients, args.duration, args.warmup))
                print(format_table(rows, COLUMNS).splitlines()[-1], flush=True)
        for _ in range(args.rounds):
            rows.append(closed_loop(stack, "fp32", args.fp32_clients, args.duration, args.warmup))
    finally:
        stack.stop()
    ort_after = raw_ort(model, workers, threads, batch, args.ort_duration)

    def mean(mode: str, key: str = "ok_per_s") -> float:
        values = [r[key] for r in rows if r["mode"] == mode]
        return sum(values) / len(values)

    ort_img_s = (ort_before["img_s"] + ort_after["img_s"]) / 2
    summary = {
        "command": "python -m stress_test.bench_v2 "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "model": model.name,
        "workers": workers,
        "threads": threads,
        "batch_size": batch,
        "clients": args.clients,
        "fp32_clients": args.fp32_clients,
        "predict_ok_per_s": round(mean("predict"), 3),
        "v2_bytes_ok_per_s": round(mean("bytes"), 3),
        "v2_fp32_ok_per_s": round(mean("fp32"), 3),
        "raw_ort_img_s": round(ort_img_s, 3),
        "raw_ort_runs": [ort_before, ort_after],
        "ratio_v2_bytes_to_predict": round(mean("bytes") / mean("predict"), 3),
        "ratio_v2_fp32_to_raw_ort": round(mean("fp32") / ort_img_s, 3),
        "api_cpu_ms_per_answer": {m: round(mean(m, "api_cpu_ms"), 1) for m in ("predict", "bytes", "fp32")},
        "workers_cpu_ms_per_answer": {m: round(mean(m, "model_cpu_ms"), 1) for m in ("predict", "bytes", "fp32")},
        "windows": rows,
    }
    write_json(out_dir / "bench_v2.json", summary)
    print(format_table(rows, COLUMNS))
    print(f"raw ONNX Runtime ({workers} x {threads} threads, batch {batch}): {ort_img_s:.2f} img/s")
    print(f"V2 BYTES / /predict: {summary['ratio_v2_bytes_to_predict']:.3f}")
    print(f"V2 FP32 / raw ORT:   {summary['ratio_v2_fp32_to_raw_ort']:.3f}")
    print(f"service CPU ms per answer outside the workers: {summary['api_cpu_ms_per_answer']}")
    print(f"workers' CPU ms per answer: {summary['workers_cpu_ms_per_answer']}")
    print(f"saved {out_dir / 'bench_v2.json'}")


if __name__ == "__main__":
    main()
