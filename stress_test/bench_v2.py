"""The Open Inference Protocol's cost, measured side by side in one run on the stack `make run` starts.

  python -m stress_test.bench_v2 [--clients 8] [--duration 20] [--rounds 3]

1. /predict vs V2 BYTES (batch 1, binary tensors, as tritonclient sends them): `--clients` closed-loop clients,
   each from its own loopback address (127.0.0.10, .11, …), unique bytes per request (stress_test/unique.py), the
   two alternated `--rounds` times so that drift on a shared machine hits both. Ratio: V2 / /predict.
2. V2 FP32 (the preprocessed tensor, no decoding) vs raw ONNX Runtime (stress_test/ort_runner.py) with the stack's
   own workers × threads and BATCH_SIZE, measured in every round while the stack idles; every image a different
   tensor. `--fp32-clients` images in flight (16 clients of 1 image: enough to fill the workers' batches);
   `--fp32-batch 1 8` adds a series of 8 images per request (2 clients), alternated. Ratio: V2 FP32 / raw ORT.

Every load runs `--settle` seconds unrecorded first. Prints the ratios and writes
stress_test/results/<run>/bench_v2.json. Figures from a busy machine are noisy: compare ratios from one run, never
figures across runs.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
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
from stress_test.results import format_table, run_dir_of_this_machine, write_json
from stress_test.unique import unique
from testkit.source_addresses import http_connection
from testkit.stack import PROGRAMS, Stack

INFER = "/v2/models/resnet50/infer"
COLUMNS = [
    ("mode", "mode"),
    ("clients", "clients"),
    ("batch", "images/request"),
    ("ok_per_s", "images/s"),
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
    """An FP32 request of N preprocessed images (N×224×224×3 float32, binary; a single HWC image is N = 1)."""
    tensor = tensor.reshape(-1, 224, 224, 3)
    header = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": list(tensor.shape),
                "parameters": {"binary_data_size": tensor.nbytes},
            }
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    text = json.dumps(header).encode()
    return text + tensor.tobytes(), {"Inference-Header-Content-Length": str(len(text))}


TENSORS_SENT = itertools.count()  # every FP32 image this process sends, across clients, windows and rounds


def stamp(n: int) -> tuple[int, int, int]:
    """Image n's first pixel: n in base 250, each digit shifted into the range preprocess_input leaves values in
    (integers, exact in float32; unique for 15.6 million images)."""
    return n % 250 - 123, n // 250 % 250 - 123, n // 62_500 - 123


IMAGE_BYTES = 224 * 224 * 3 * 4  # one FP32 image in a request body


class UniqueFp32Bodies:
    """One client's FP32 request bodies of `batch` images, built once from `tensors`; each request writes a number no
    other image of this process carries into the first pixel of each of its images (12 bytes, in place): the same
    work for the model, never a response-cache hit, and no N × 588 KiB of copies per request in a load generator
    that shares the cores with the service it measures. A closed-loop client sends one body at a time, so a body
    is rewritten only after its answer arrived."""

    def __init__(self, tensors: list[np.ndarray], batch: int) -> None:
        self.batch, self.sent = batch, 0
        self.bodies: list[bytearray] = []
        for start in range(len(tensors)):
            body, self.headers = v2_fp32_body(np.stack([tensors[(start + k) % len(tensors)] for k in range(batch)]))
            self.bodies.append(bytearray(body))
        self.pixels_at = len(self.bodies[0]) - batch * IMAGE_BYTES  # the binary tensor follows the JSON header

    def next(self) -> tuple[bytearray, dict[str, str]]:
        body = self.bodies[self.sent % len(self.bodies)]
        self.sent += 1
        for k in range(self.batch):
            at = self.pixels_at + k * IMAGE_BYTES
            body[at : at + 12] = struct.pack("<3f", *stamp(next(TENSORS_SENT)))
        return body, self.headers


def _client(
    port: int, index: int, mode: str, stop: float, start: float, out: list, run_id: str, batch: int = 1
) -> None:
    """One closed-loop client from its own loopback address; appends (ok, images) per request completed in the
    window. `batch`: images per FP32 request."""
    photos = photo_bytes()
    bodies = UniqueFp32Bodies([preprocess(data) for _, data in photos], batch) if mode == "fp32" else None
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
        else:
            body, headers = bodies.next()
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
            out.append((ok, batch if mode == "fp32" else 1))
    conn.close()


def closed_loop(stack: Stack, mode: str, clients: int, duration: float, warmup: float, batch: int = 1) -> dict:
    """Images answered per second over the window, the failed requests, and what the service's CPU spent per
    answered image (ms, by program: nginx, gunicorn, redis; model = the workers) — a figure other load on a shared
    machine cannot distort the way it distorts throughput. `batch`: images per FP32 request."""
    start = time.monotonic() + warmup
    stop = start + duration
    out: list[tuple[bool, int]] = []
    run_id = uuid.uuid4().hex[:8]
    threads = [
        threading.Thread(target=_client, args=(stack.port, i, mode, stop, start, out, run_id, batch), daemon=True)
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
    images = sum(n for ok, n in out if ok)
    cpu_ms = {name: round((cpu_stop[name] - cpu_start[name]) * 1000 / max(1, images), 1) for name in PROGRAMS}
    return {
        "mode": mode,
        "clients": clients,
        "batch": batch,
        "ok_per_s": round(images / duration, 3),
        "failed": sum(1 for ok, _ in out if not ok),
        "cpu_ms_per_answer": cpu_ms,
        "api_cpu_ms": round(sum(v for k, v in cpu_ms.items() if k != "model"), 1),
        "model_cpu_ms": cpu_ms["model"],
    }


def raw_ort(model: Path, workers: int, threads: int, batch: int, duration: float) -> dict:
    return ort_runner.run(ort_runner.Config(str(model), workers, threads, batch, duration_s=duration))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--fp32-clients", type=int, default=16, help="FP32 images in flight: clients × images per request")
    p.add_argument(
        "--fp32-batch", type=int, nargs="+", default=[1], help="images per FP32 request, one series each (default 1)"
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds per measured window")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3, help="rounds of every load (default 3)")
    p.add_argument("--ort-duration", type=float, default=10.0, help="seconds of raw ONNX Runtime in each round")
    p.add_argument("--settle", type=float, default=8.0, help="unrecorded seconds of each load before the rounds")
    args = p.parse_args()
    model = variants(model_dir()).get(os.environ.get("MODEL_VARIANT", "fp32"))
    if model is None:
        raise SystemExit(f"no converted model in {model_dir()}: run `make model` (or set MODEL_DIR)")
    workers = int(os.environ.get("WORKERS") or os.cpu_count() or 1)
    threads = int(os.environ.get("THREADS") or max(1, (os.cpu_count() or 1) // workers))
    batch = int(os.environ.get("BATCH_SIZE") or 8)
    out_dir = run_dir_of_this_machine()  # beside the raw benchmark: one run, one report

    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-v2-")), workers=workers)
    rows: list[dict] = []
    raw: list[dict] = []
    fp32_clients = {size: max(1, -(-args.fp32_clients // size)) for size in args.fp32_batch}  # same images in flight
    try:
        stack.start()
        # Unrecorded: the first requests of each batch size make ONNX Runtime grow its arena and pick kernels.
        for mode, clients, size in [("predict", args.clients, 1), ("bytes", args.clients, 1)] + [
            ("fp32", fp32_clients[size], size) for size in args.fp32_batch
        ]:
            closed_loop(stack, mode, clients, args.settle, 1.0, size)
        for _ in range(args.rounds):
            for mode in ("predict", "bytes"):
                rows.append(closed_loop(stack, mode, args.clients, args.duration, args.warmup))
                print(format_table(rows, COLUMNS).splitlines()[-1], flush=True)
            for size in args.fp32_batch:  # alternated, like /predict and BYTES
                rows.append(closed_loop(stack, "fp32", fp32_clients[size], args.duration, args.warmup, size))
                print(format_table(rows, COLUMNS).splitlines()[-1], flush=True)
            # Raw ONNX Runtime in the same round, the stack idle beside it: drift hits both sides of the ratio.
            raw.append(raw_ort(model, workers, threads, batch, args.ort_duration))
            print(f"raw ONNX Runtime: {raw[-1]['img_s']} img/s", flush=True)
    finally:
        stack.stop()

    def mean(mode: str, key: str = "ok_per_s", size: int | None = None) -> float:
        values = [r[key] for r in rows if r["mode"] == mode and (size is None or r["batch"] == size)]
        return sum(values) / len(values)

    ort_img_s = sum(r["img_s"] for r in raw) / len(raw)
    first = args.fp32_batch[0]  # the series the FP32 target is judged on
    modes = [("predict", 1), ("bytes", 1), ("fp32", first)]
    summary = {
        "command": "python -m stress_test.bench_v2 "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
        ),
        "model": model.name,
        "workers": workers,
        "threads": threads,
        "batch_size": batch,
        "clients": args.clients,
        "fp32_clients": args.fp32_clients,
        "predict_ok_per_s": round(mean("predict"), 3),
        "v2_bytes_ok_per_s": round(mean("bytes"), 3),
        "v2_fp32_ok_per_s": round(mean("fp32", size=first), 3),
        "fp32_batch": first,
        "raw_ort_img_s": round(ort_img_s, 3),
        "raw_ort_runs": raw,
        "ratio_v2_bytes_to_predict": round(mean("bytes") / mean("predict"), 3),
        "ratio_v2_fp32_to_raw_ort": round(mean("fp32", size=first) / ort_img_s, 3),
        "fp32_by_batch": {
            str(size): {
                "clients": fp32_clients[size],
                "ok_per_s": round(mean("fp32", size=size), 3),
                "ratio_to_raw_ort": round(mean("fp32", size=size) / ort_img_s, 3),
                "api_cpu_ms": round(mean("fp32", "api_cpu_ms", size), 1),
                "model_cpu_ms": round(mean("fp32", "model_cpu_ms", size), 1),
            }
            for size in args.fp32_batch
        },
        "api_cpu_ms_per_answer": {m: round(mean(m, "api_cpu_ms", s), 1) for m, s in modes},
        "workers_cpu_ms_per_answer": {m: round(mean(m, "model_cpu_ms", s), 1) for m, s in modes},
        "windows": rows,
    }
    write_json(out_dir / "bench_v2.json", summary)
    print(format_table(rows, COLUMNS))
    print(f"raw ONNX Runtime ({workers} x {threads} threads, batch {batch}): {ort_img_s:.2f} img/s")
    print(f"V2 BYTES / /predict: {summary['ratio_v2_bytes_to_predict']:.3f}")
    for size, fp32 in summary["fp32_by_batch"].items():
        print(f"V2 FP32 ({size} images per request) / raw ORT: {fp32['ratio_to_raw_ort']:.3f}")
    print(f"service CPU ms per answer outside the workers: {summary['api_cpu_ms_per_answer']}")
    print(f"workers' CPU ms per answer: {summary['workers_cpu_ms_per_answer']}")
    print(f"saved {out_dir / 'bench_v2.json'}")


if __name__ == "__main__":
    main()
