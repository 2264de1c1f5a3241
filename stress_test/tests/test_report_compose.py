"""The containers' scaling section of the hardware report, from small hand-made result files."""

from __future__ import annotations

import json
from pathlib import Path


from stress_test.report_compose import compose_section


def write(folder: Path, name: str, data: dict) -> None:
    (folder / name).write_text(json.dumps(data))


def test_containers_beside_processes(tmp_path):
    write(
        tmp_path,
        "compose_matrix.json",
        {
            "settings": {"cpus": 1.0, "batch_size": 8, "duration": 30, "latency_duration": 15},
            "runs": [
                {"models": 1, "sat_ok_per_s": 20.0, "x_one": 1.0, "sat_p50_ms": 400, "lat1_p50_ms": 45},
                {"models": 2, "sat_ok_per_s": 36.0, "x_one": 1.8, "sat_p50_ms": 420, "lat1_p50_ms": 46},
            ],
        },
    )
    write(
        tmp_path,
        "matrix.json",
        {
            "configs": [
                {"variant": "fp32", "workers": 1, "threads": 1, "batch": 8, "sat_ok_per_s": 25.0, "lat1_p50_ms": 42},
                {"variant": "fp32", "workers": 2, "threads": 1, "batch": 8, "sat_ok_per_s": 45.0, "lat1_p50_ms": 43},
                {"variant": "int8", "workers": 2, "threads": 1, "batch": 8, "sat_ok_per_s": 99.0},
            ]
        },
    )
    text = "\n".join(compose_section(tmp_path))
    assert "| 1 | 20.0 | 1.0 | 400 | 45 | 25.0 | 1.0 | 42 | 0.8 |" in text
    assert "| 2 | 36.0 | 1.8 | 420 | 46 | 45.0 | 1.8 | 43 | 0.8 |" in text
    assert "99.0" not in text  # INT8 rows are not the process-based counterpart


def test_not_run_and_failed_runs_are_said(tmp_path):
    assert "Not run" in "\n".join(compose_section(tmp_path))
    write(tmp_path, "compose_matrix.json", {"settings": {}, "runs": [{"models": 1, "error": "RuntimeError: boom"}]})
    text = "\n".join(compose_section(tmp_path))
    assert "1 container(s) failed: RuntimeError: boom" in text and "No successful single-container run" in text
