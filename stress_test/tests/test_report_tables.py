"""The report's tables read from the benchmarks' JSON: peers side by side (found in this run or the newest that has
it), each absent when its file is."""

from __future__ import annotations

import json
from pathlib import Path

from stress_test.report_data import load
from stress_test.report_sections import (
    document,
    peers_report_section,
)


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def system(p50: float, rate8: float, rate64: float) -> dict:
    loads = {
        "1": {"img_s": 9.0, "p50_ms": p50, "p99_ms": p50 * 1.5, "errors": 0},
        "8": {"img_s": rate8, "p50_ms": 400.0, "p99_ms": 550.0, "errors": 0},
        "64": {"img_s": rate64, "p50_ms": 1600.0, "p99_ms": 2200.0, "errors": 960},
    }
    return {"status": "ok", "version": "1", "request": "x", "loads": loads}


def peers(ours_p50: float = 92.0) -> dict:
    return {
        "settings": {"loads": [1, 8, 64], "duration_s": 15, "warmup_s": 3, "replicas": 2, "threads": 1, "max_batch": 8},
        "model": {"file": "resnet50.onnx"},
        "systems": {
            "ours": system(ours_p50, 20.0, 20.0),
            "bentoml": system(89.0, 16.0, 20.0),
            "mlserver": system(102.0, 16.0, 22.0),
            "ray": {"status": "failed", "error": "TimeoutError: no answer | after 300 s", "version": "2.6"},
        },
        "raw_onnxruntime": [
            {"workers": 2, "threads": 1, "batch": 8, "img_s": 25.0, "p50_ms": 570.0},
            {"workers": 1, "threads": 1, "batch": 1, "img_s": 13.0, "p50_ms": 74.0},
        ],
    }


def test_peers_verdict_states_each_goal_with_its_figures(tmp_path):
    write(tmp_path / "run" / "peers.json", peers())
    text = "\n".join(peers_report_section(tmp_path / "run"))
    # 8 clients: 20 / 16 = 1.25 ≥ 1.1; 64 clients: 20 / 22 = 0.91 < 1.1; 1 client: 92 ms against BentoML's 89 ms
    assert "8 clients, ≥ 1.1× the best peer's img/s: met — this service 20.0 img/s, BentoML 16.0 img/s: 1.25×" in text
    assert "64 clients, ≥ 1.1× the best peer's img/s: **missed** — this service 20.0 img/s, MLServer 22.0" in text
    assert "1 client, p50 no worse than the best peer's: **missed** — this service 92.0 ms, BentoML 89.0 ms" in text
    assert "Ray Serve did not run: TimeoutError: no answer / after 300 s" in text  # the reason, pipe made safe
    # next to raw ONNX Runtime of the same run: 20 / 25 img/s, 92 - 74 ms
    assert "| this service | +18 | 1 | 0.8 | 1 | 0.8 |" in text
    assert "| MLServer | +28 | 0.8 | 0.64 | 1.1 | 0.88 |" in text
    assert "From `" not in text  # found in the report's own folder


def test_peers_come_from_the_newest_run_that_has_them(tmp_path):
    write(tmp_path / "20260101T000000Z" / "peers.json", peers(ours_p50=200.0))
    write(tmp_path / "20260102T000000Z" / "peers.json", peers(ours_p50=80.0))
    write(tmp_path / "20260103T000000Z" / "bench.json", {"runs": []})
    text = "\n".join(peers_report_section(tmp_path / "20260103T000000Z"))
    assert "20260102T000000Z/peers.json`: this run's folder has no peers.json" in text
    assert "p50 no worse than the best peer's: met — this service 80.0 ms" in text


def test_no_peers_anywhere_renders_nothing(tmp_path):
    (tmp_path / "run").mkdir()
    assert peers_report_section(tmp_path / "run") == []


def test_an_old_results_folder_renders_without_the_new_sections(tmp_path):
    bench = {"variant": "fp32", "workers": 1, "threads": 1, "batch": 1, "img_s": 10.0, "p50_ms": 1.0}
    write(tmp_path / "run" / "bench.json", {"runs": [bench], "settings": {}})
    text = "\n".join(document(tmp_path / "run", load(tmp_path / "run"), "run"))
    for heading in ("serving peers",):
        assert heading not in text
    assert "## Raw model benchmark" in text
