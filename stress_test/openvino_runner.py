"""Raw OpenVINO throughput for one workers x threads x batch configuration, on the same ONNX file as ort_runner.

The same measurement as ort_runner (spawned processes, barrier, fixed window, per-batch latencies): only the
session differs, and it is the worker's own (model/openvino_session.py, what RUNTIME=openvino runs), so
`run(cfg)` is ort_runner.run with that factory.
"""

from __future__ import annotations

from typing import Any

from stress_test import ort_runner


def _session_module() -> Any:
    from stress_test.service_code import service_module

    return service_module("model", "openvino_session")


def open_compiled(path: str, threads: int, spin: bool, batch: int | None = None) -> Any:
    """The worker's own OpenVINO session, behind ort_runner's session factory: `spin` has no OpenVINO counterpart,
    and the model keeps its dynamic batch dimension whatever `batch` is, as in the worker."""
    return _session_module().open_compiled(path, threads)


def version() -> str | None:
    """OpenVINO's version, or None when it is not installed (the bench then skips its rows)."""
    return _session_module().version()


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
