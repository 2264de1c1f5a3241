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


def beside(ort_row: dict[str, Any], cfg: ort_runner.Config) -> dict[str, Any]:
    """The OpenVINO row of the configuration `ort_row` was measured on (`cfg`), with its ratio to it
    (x_onnxruntime). Run right after the ONNX Runtime row, so that the ratio does not carry the machine's drift
    between two grids measured minutes apart."""
    row = {"variant": ort_row["variant"], **run(cfg)}
    row["x_onnxruntime"] = round(row["img_s"] / ort_row["img_s"], 2) if ort_row.get("img_s") else None
    return row
