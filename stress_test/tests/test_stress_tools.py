"""Fast checks of the benchmark tooling (no Redis, no ResNet50): grids, recommendations, parsing, targets.

Run: cd stress_test && ../.venv/bin/python -m pytest tests -q   (the bench smoke tests run testkit's tiny model).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stress_test import config_search
from stress_test import locust_run
from stress_test import machine
from stress_test import ort_runner
from stress_test.report_data import Figures, targets
from testkit.tiny_model import TINY_GFLOPS, write_tiny_model

REPO = Path(__file__).resolve().parents[2]


def test_grid_keeps_workers_times_threads_within_cores():
    points = ort_runner.grid(2, [1, 2], None, [1, 8])
    assert sorted(points) == [(1, 1, 1), (1, 1, 8), (1, 2, 1), (1, 2, 8), (2, 1, 1), (2, 1, 8)]


def test_simd_lanes_by_isa():
    assert machine.simd_lanes({"avx512f", "avx2", "fma"}, "AuthenticAMD", 26)[0] == 16
    assert machine.simd_lanes({"avx512f"}, "AuthenticAMD", 25)[0] == 8  # Zen 4 double-pumps AVX-512
    assert machine.simd_lanes({"avx2", "fma"}, "GenuineIntel", 6)[0] == 8


def test_recommend_prefers_throughput_and_lowest_single_latency():
    rows = [
        {"workers": 2, "threads": 1, "batch": 8, "img_s": 20.0, "p50_ms": 800, "p95_ms": 820},
        {"workers": 2, "threads": 1, "batch": 1, "img_s": 19.9, "p50_ms": 100, "p95_ms": 110},
        {"workers": 1, "threads": 2, "batch": 1, "img_s": 16.0, "p50_ms": 60, "p95_ms": 65},
    ]
    best = config_search.recommend(rows)
    assert (best["throughput"]["workers"], best["throughput"]["batch"]) == (2, 1)  # within 3%, lower p95
    assert (best["latency"]["workers"], best["latency"]["threads"]) == (1, 2)
    assert config_search.env_line(best["latency"], "int8") == (
        "WORKERS=1 THREADS=2 BATCH_SIZE=1 MODEL_VARIANT=int8 RUNTIME=onnxruntime"  # rows without a runtime: ORT's
    )


def test_recommend_names_the_faster_runtime_and_the_default_within_3_percent():
    def row(runtime: str, batch: int, img_s: float, p50_ms: float) -> dict:
        return {"runtime": runtime, "workers": 2, "threads": 1, "batch": batch, "img_s": img_s, "p50_ms": p50_ms}

    ort = [row("onnxruntime 1.31.1", 8, 100.0, 160), row("onnxruntime 1.31.1", 1, 80.0, 25.0)]
    for r in ort:
        r["p95_ms"] = r["p50_ms"] + 5
    faster = [row("openvino 2026.4.1", 8, 140.0, 120), row("openvino 2026.4.1", 1, 110.0, 18.0)]
    close = [row("openvino 2026.4.1", 8, 102.0, 150), row("openvino 2026.4.1", 1, 81.0, 24.5)]
    for r in faster + close:
        r["p95_ms"] = r["p50_ms"] - 5  # lower p95 than ONNX Runtime's, which decides only within one runtime
    best = config_search.recommend(ort + faster)
    assert config_search.env_line(best["throughput"], "int8").endswith(
        "BATCH_SIZE=8 MODEL_VARIANT=int8 RUNTIME=openvino"
    )
    assert config_search.env_line(best["latency"], "int8").endswith("BATCH_SIZE=1 MODEL_VARIANT=int8 RUNTIME=openvino")
    best = config_search.recommend(ort + close)  # 2 % more img/s, 2 % lower p50: the default stays
    assert config_search.runtime_of(best["throughput"]) == config_search.runtime_of(best["latency"]) == "onnxruntime"


def test_locust_summary_separates_backpressure(tmp_path):
    csv = tmp_path / "u4_stats.csv"
    csv.write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Requests/s,50%,95%,99%\n"
        "POST,/predict,100,10,50,55,10.0,50,90,120\n"
        f"POST,{locust_run.BACKPRESSURE_NAME},7,7,2,2,0.7,2,3,3\n"
        "GET,GET /,5,0,3,3,0.5,3,4,4\n"
        ",Aggregated,112,17,40,45,11.2,40,90,120\n"
    )
    s = locust_run.summarize(csv, 4)
    assert s["predict_ok_per_s"] == pytest.approx(9.0)
    assert s["backpressure_503"] == 7 and s["predict_failures"] == 10 and s["p95_ms"] == 90


def test_targets_report_margin_and_unmeasured():
    f = Figures(
        Path("."),
        bench={
            "runs": [
                {
                    "variant": "fp32",
                    "workers": 1,
                    "threads": 2,
                    "batch": 1,
                    "img_s": 20.0,
                    "p50_ms": 50.0,
                    "peak_pct": 90.0,
                }
            ],
            "baseline": {"img_s": 5.0},
            "machine": {"peak_gflops": 100},
        },
        matrix={
            "configs": [
                {
                    "config": "fp32-w1-t2-b8",
                    "variant": "fp32",
                    "workers": 1,
                    "threads": 2,
                    "sat_ok_per_s": 17.0,
                    "lat1_p50_ms": 65.0,
                    "rss_mb_max": 300,
                    "ready_s_max": 1.0,
                }
            ]
        },
    )
    by = {t["target"].split(" (")[0]: t for t in targets(f)}
    assert by["end-to-end saturation / raw ORT best fp32"]["met"] is False  # 0.85 < 0.90
    assert by["end-to-end saturation / Keras baseline"]["met"] is True  # 3.4x
    assert by["1-user p50 minus raw batch-1 p50"]["met"] is False  # +15 ms
    assert by["INT8 / fp32 end-to-end saturation"]["met"] is None


def test_bench_counts_flops_of_the_served_graph(tmp_path):
    write_tiny_model(tmp_path / "resnet50.onnx")
    from stress_test import bench_model

    gflops, how = bench_model.count_gflops(tmp_path / "resnet50.onnx")
    assert gflops == TINY_GFLOPS and "conversion/flops.py" in how


def test_bench_quick_smoke(tmp_path):
    write_tiny_model(tmp_path / "resnet50.onnx")
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "-m", "stress_test.bench_model", "--quick", "--model-dir", str(tmp_path), "--out", str(out)],
        cwd=REPO,
        check=True,
        timeout=120,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["runs"][0]["img_s"] > 0 and result["gflops_per_image"] == TINY_GFLOPS
    point = ("variant", "workers", "threads", "batch")
    assert [tuple(r[k] for k in point) for r in result["openvino"]] == [
        tuple(r[k] for k in point) for r in result["runs"]
    ]
    for ov, ort in zip(result["openvino"], result["runs"]):  # each beside the row of its configuration
        assert ov["runtime"].startswith("openvino") and ov["x_onnxruntime"] == round(ov["img_s"] / ort["img_s"], 2)


def test_bench_runs_each_openvino_row_right_after_its_onnxruntime_row(monkeypatch):
    """Measured minutes apart, two grids would compare the machine's drift as much as the runtimes."""
    from argparse import Namespace

    from stress_test import bench_model, openvino_runner, ort_runner

    order = []

    def measured(runtime: str, rate: float):
        def run(cfg, *_):
            order.append((runtime, cfg.workers, cfg.threads, cfg.batch))
            return {"workers": cfg.workers, "threads": cfg.threads, "batch": cfg.batch, "img_s": rate}

        return run

    monkeypatch.setattr(ort_runner, "run", measured("onnxruntime", 40.0))
    monkeypatch.setattr(openvino_runner, "run", measured("openvino", 44.0))
    args = Namespace(workers="1,2", threads="1", batches="1,8", duration=1.0, warmup=0.1, spin="auto")
    info = {"cores": 2, "fma_probe": None, "peak_gflops": None}
    rows, ov_rows = bench_model.measure_grid(args, info, {"fp32": Path("m.onnx")}, ["fp32"], None, None, True)
    points = [(w, 1, b) for w in (1, 2) for b in (1, 8)]
    assert order == [(runtime, *p) for p in points for runtime in ("onnxruntime", "openvino")]
    assert len(rows) == len(ov_rows) == 4 and {r["x_onnxruntime"] for r in ov_rows} == {1.1}
    order.clear()
    assert bench_model.measure_grid(args, info, {"fp32": Path("m.onnx")}, ["fp32"], None, None, False)[1] == []
    assert {runtime for runtime, *_ in order} == {"onnxruntime"}


def test_formula_peak_above_one_is_not_counted_as_met():
    from stress_test import report_data

    f = Figures(
        Path("."),
        bench={
            "runs": [
                {
                    "variant": "fp32",
                    "workers": 2,
                    "threads": 1,
                    "batch": 8,
                    "img_s": 58.0,
                    "p50_ms": 270.0,
                    "peak_pct": 134.7,
                    "peak_pct_measured": 86.9,
                }
            ]
        },
    )
    by = {t["target"]: t for t in targets(f)}
    assert by["best fp32 raw configuration / fp32 peak (formula)"]["met"] == report_data.ABOVE_FORMULA_PEAK
    assert by["best fp32 raw configuration / measured FMA peak"]["met"] is True


METRICS_TEXT = """\
# TYPE api_request_latency_seconds histogram
api_request_latency_seconds_sum{{endpoint="/predict"}} {api_sum}
api_request_latency_seconds_count{{endpoint="/predict"}} {api_n}
api_request_latency_seconds_sum{{endpoint="/"}} 99.0
api_request_latency_seconds_count{{endpoint="/"}} 1.0
# TYPE ml_worker_batch_size histogram
ml_worker_batch_size_sum{{worker="a"}} {images_a}
ml_worker_batch_size_count{{worker="a"}} {batches_a}
ml_worker_batch_size_sum{{worker="b"}} {images_b}
ml_worker_batch_size_count{{worker="b"}} {batches_b}
# TYPE ml_worker_inference_seconds histogram
ml_worker_inference_seconds_sum{{worker="a"}} {inf_a}
ml_worker_inference_seconds_count{{worker="a"}} {batches_a}
ml_worker_inference_seconds_sum{{worker="b"}} {inf_b}
ml_worker_inference_seconds_count{{worker="b"}} {batches_b}
# TYPE ml_worker_preprocess_seconds histogram
ml_worker_preprocess_seconds_sum{{worker="a"}} {pre_a}
ml_worker_preprocess_seconds_count{{worker="a"}} {images_a}
ml_worker_preprocess_seconds_sum{{worker="b"}} {pre_b}
ml_worker_preprocess_seconds_count{{worker="b"}} {images_b}
"""


def test_stage_ms_diffs_histograms_summed_over_workers():
    from stress_test import stages

    before = stages.parse(
        METRICS_TEXT.format(
            api_sum=1.0,
            api_n=10,
            images_a=10,
            batches_a=2,
            images_b=0,
            batches_b=0,
            inf_a=0.5,
            inf_b=0.0,
            pre_a=0.1,
            pre_b=0.0,
        )
    )
    # then 16 images in 2 batches on worker a and 8 in 1 batch on b: 3 batches of 0.24 s, 5 ms preprocessing each
    after = stages.parse(
        METRICS_TEXT.format(
            api_sum=1.0 + 24 * 0.4,
            api_n=34,
            images_a=26,
            batches_a=4,
            images_b=8,
            batches_b=1,
            inf_a=0.5 + 0.48,
            inf_b=0.24,
            pre_a=0.1 + 0.08,
            pre_b=0.04,
        )
    )
    st = stages.stage_ms(before, after)
    assert st["images"] == 24 and st["batches"] == 3 and st["mean_batch"] == 8.0
    assert st["inference_per_batch"] == pytest.approx(240.0) and st["inference_per_image"] == pytest.approx(30.0)
    assert st["preprocess_per_image"] == pytest.approx(5.0)
    assert st["api_request"] == pytest.approx(400.0)  # only /predict, not the page
    assert st["queue_wait"] is None  # not in the scrape: not invented
    assert "error" in stages.stage_ms("/metrics scrape failed: boom", after)


def test_profile_sentence_uses_measured_stages_or_falls_back():
    from stress_test.report_sections import cpu_profile

    config = {
        "config": "fp32-w2-t1-b8",
        "variant": "fp32",
        "workers": 2,
        "threads": 1,
        "batch": 8,
        "sat_ok_per_s": 48.0,
        "raw_img_s": 61.0,
        "raw_same_config": {"per_image_ms": 32.7},
        "saturation": {"cpu_cores_used": {"model": 1.75, "api": 0.2, "other": 0.0}},
    }
    old = cpu_profile(Figures(Path("."), matrix={"configs": [config]}))[0]
    assert "the difference is decoding and preprocessing" in old
    config["saturation"]["stages_ms"] = {
        "preprocess_per_image": 5.0,
        "inference_per_image": 33.0,
        "inference_per_batch": 260.0,
        "mean_batch": 7.9,
        "queue_wait": 300.0,
        "api_request": 650.0,
    }
    new = cpu_profile(Figures(Path("."), matrix={"configs": [config]}))[0]
    assert "the difference is decoding" not in new
    assert "0.24 cores spent on it" in new  # 5 ms x 48 img/s
    assert "(1.01x)" in new  # 33.0 vs 32.7 ms per image raw
    assert "5.0 + 33.0 ms of the 41.7 ms" in new  # 2 workers / 48 img/s


def test_shedding_section_reports_p99_against_the_target(tmp_path):
    from stress_test.report_sections import shedding_section

    assert "Not measured" in " ".join(shedding_section(tmp_path))
    base = {
        "clients": 160,
        "duration_s": 60.0,
        "ok_per_s": 45.0,
        "p50_ms": 700.0,
        "max_ms": 2900.0,
        "shed_rate": 0.8,
        "statuses": {"200": 2700, "503": 10800},
        "max_inflight": 32,
    }
    (tmp_path / "shedding.json").write_text(json.dumps({**base, "p99_ms": 1200.0}))
    assert "p99 1200.0 ms (target ≤ 3000 ms: met)" in " ".join(shedding_section(tmp_path))
    (tmp_path / "shedding.json").write_text(json.dumps({**base, "p99_ms": 3400.0}))
    assert "**missed**" in " ".join(shedding_section(tmp_path))


def test_results_record_paths_relative_to_the_repository(tmp_path):
    from stress_test import results

    inside = str(results.REPO / "model" / "artifacts" / "w.h5")
    data = {"weights": inside, "runs": [{"note": f"weights {inside}; see /usr/bin/python3"}], "n": 3}
    written = json.loads(results.write_json(tmp_path / "r.json", data).read_text())
    assert written == {
        "weights": "model/artifacts/w.h5",
        "runs": [{"note": "weights model/artifacts/w.h5; see /usr/bin/python3"}],
        "n": 3,
    }


def test_explain_section_reads_the_benchmark_json(tmp_path):
    from stress_test.report_sections import explain_section

    assert "Not run" in "\n".join(explain_section(tmp_path))
    row = {
        "variant": "fp32",
        "batch": 8,
        "threads": 1,
        "no_features_ms": 17.1,
        "not_asked_ms": 17.12,
        "not_asked_delta_ms": 0.02,
        "not_asked_ci_ms": 0.05,
        "explain_ms": 17.3,
        "explain_delta_ms": 0.18,
        "explain_ci_ms": 0.04,
        "cam_only_us": 12.5,
    }
    slow = {**row, "variant": "int8", "not_asked_delta_ms": 0.4, "not_asked_ci_ms": 0.1, "explain_delta_ms": 1.5}
    (tmp_path / "explain.json").write_text(json.dumps({"rows": [row, slow]}))
    text = "\n".join(explain_section(tmp_path))
    assert "| fp32 | 8 | 17.1 | 17.12 | +0.020 ± 0.050 |" in text and "not measurable; explain met" in text
    assert "+0.400 ms; explain **missed**" in text


def test_queue_benchmark_smoke_and_capacity_section(tmp_path):
    """bench_queue.py end to end in a few seconds (real redis-server, the services' own protocol code), then the
    report's capacity section computed from its JSON."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stress_test.bench_queue",
            "--duration",
            "1",
            "--warmup",
            "0.5",
            "--clients",
            "4",
            "--client-procs",
            "1",
            "--workers",
            "1",
            "--payload-bytes",
            "150528",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads((tmp_path / "queue_capacity.json").read_text())
    [run] = data["runs"]
    assert run["jobs"] > 0 and run["errors"] == 0 and run["payload_bytes"] == 150528
    assert run["jobs_s_per_redis_core"] >= run["jobs_s"]  # Redis used at most one core

    from stress_test import report_sections

    bench = {
        "runs": [
            {"variant": "fp32", "workers": 1, "threads": 1, "batch": 8, "img_s": 30.0},
            {"variant": "int8", "workers": 1, "threads": 1, "batch": 8, "img_s": 100.0},
        ]
    }
    matrix = {"configs": [{"variant": "fp32", "sat_ok_per_s": 50.0}]}
    lines = report_sections.capacity_section(tmp_path, Figures(tmp_path, bench, matrix))
    text = "\n".join(lines)
    assert "| 1000x | 50000.0 | fp32 | 1667 |" in text and "| 10x | 500.0 | int8 | 5 |" in text
