"""Raw OpenVINO throughput for one workers x threads x batch configuration, on the same ONNX file as ort_runner.

The same measurement as ort_runner (spawned processes, barrier, fixed window, per-batch latencies): only the
session differs. `open_compiled` wraps an OpenVINO compiled model in the few calls of an ONNX Runtime session
the runner uses, so `run(cfg)` is ort_runner.run with this factory. The settings mirror model/session.py: a fixed
number of inference threads, one stream, f32 precision, and no thread pinning (processes share the cores, as
ONNX Runtime's spinning is off for them). The model is reshaped to the configuration's static batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stress_test import ort_runner


@dataclass(frozen=True)
class _Port:
    name: str


class CompiledSession:
    """An OpenVINO compiled model behind ONNX Runtime's get_inputs / get_outputs / run(names, feed)."""

    def __init__(self, compiled: Any) -> None:
        self.request = compiled.create_infer_request()
        self.inputs = [_Port(p.get_any_name()) for p in compiled.inputs]
        self.outputs = [_Port(p.get_any_name()) for p in compiled.outputs]

    def get_inputs(self) -> list[_Port]:
        return self.inputs

    def get_outputs(self) -> list[_Port]:
        return self.outputs

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer(feed)
        by_name = {port.get_any_name(): value for port, value in result.items()}
        return [by_name[n] for n in names]


def open_compiled(path: str, threads: int, spin: bool, batch: int | None = None) -> CompiledSession:
    """Compile the ONNX file for the CPU with `threads` inference threads (`spin` has no OpenVINO counterpart)."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    if batch:
        model.reshape({model.inputs[0].get_any_name(): [batch, 224, 224, 3]})
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
        "ENABLE_CPU_PINNING": False,
    }
    return CompiledSession(core.compile_model(model, "CPU", config))


def version() -> str | None:
    """OpenVINO's version, or None when it is not installed (the bench then skips its rows)."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split("-")[0]


def run(cfg: ort_runner.Config) -> dict[str, Any]:
    """ort_runner.run's figures for the same configuration, with OpenVINO compiling the model."""
    return {**ort_runner.run(cfg, open_compiled), "runtime": f"openvino {version()}"}


COLUMNS = [
    ("variant", "variant"),
    *ort_runner.RUN_COLUMNS,
    ("x_onnxruntime", "x ORT"),
    ("rss_mb_max", "RSS MB"),
    ("other_load_cores", "other load"),
]


def bench_rows(
    models: dict[str, Any], variants: list[str], points: list[tuple[int, int, int]], ort_rows: list[dict], **cfg: Any
) -> list[dict[str, Any]]:
    """bench_model's raw rows again with OpenVINO: every variant x (workers, threads, batch) of the ORT rows, each
    with its ratio to the ONNX Runtime row of the same configuration (x_onnxruntime); [] when not installed."""
    from stress_test.results import progress_line

    if version() is None:
        print("openvino rows skipped: openvino is not installed in this environment")
        return []
    ort = {(r["variant"], r["workers"], r["threads"], r["batch"]): r["img_s"] for r in ort_rows}
    rows: list[dict[str, Any]] = []
    print(f"\nOpenVINO {version()} on the same files:")
    for variant in variants:
        for w, t, b in points:
            row = {"variant": variant, **run(ort_runner.Config(str(models[variant]), w, t, b, **cfg))}
            base = ort.get((variant, w, t, b))
            row["x_onnxruntime"] = round(row["img_s"] / base, 2) if base else None
            rows.append(row)
            print(progress_line(rows, COLUMNS), flush=True)
    return rows
