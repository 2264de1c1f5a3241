"""The report's tables read from the benchmarks' JSON: peers side by side (found in this run or the newest that has
it), OpenVINO beside ONNX Runtime, the recommended settings, the CPU account, goodput under overload; each absent
when its file is."""

from __future__ import annotations

import json
from pathlib import Path

from stress_test.report_data import Figures, load
from stress_test.report_sections import (
    config_section,
    cpu_account_section,
    document,
    openvino_section,
    peers_report_section,
    shedding_section,
    v2_section,
)


MACHINE = {"cpu_model": "Xeon", "vendor": "GenuineIntel", "family": 6, "cores": 2, "flags": {"avx2": True}}


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
    write(tmp_path / "20260101T000000Z" / "peers.json", peers(ours_p50=200.0) | {"machine": MACHINE})
    write(tmp_path / "20260102T000000Z" / "peers.json", peers(ours_p50=80.0) | {"machine": MACHINE})
    write(tmp_path / "20260103T000000Z" / "bench.json", {"runs": [], "machine": MACHINE})
    text = "\n".join(peers_report_section(tmp_path / "20260103T000000Z"))
    assert "20260102T000000Z/peers.json`: this run's folder has no peers.json" in text
    assert "p50 no worse than the best peer's: met — this service 80.0 ms" in text


def test_no_peers_anywhere_renders_nothing(tmp_path):
    (tmp_path / "run").mkdir()
    assert peers_report_section(tmp_path / "run") == []


def ort(variant: str, workers: int, threads: int, batch: int, img_s: float) -> dict:
    return {"variant": variant, "workers": workers, "threads": threads, "batch": batch, "img_s": img_s, "p50_ms": 1.0}


def account(inference: float, rest: dict[str, float]) -> dict:
    per = {"inference": inference, **rest}
    return {"window_s": 30, "answered": 600, "cpu_ms_per_image": per, "other_on_machine_cores": 0.02}


def workloads(tmp_path: Path) -> None:
    rest = {
        "nginx": 2.0,
        "gunicorn": 8.0,
        "redis": 1.0,
        "worker_outside_inference": 4.0,
        "load_generator": 5.0,
        "supervisord": 0.5,
        "model_service": 0.5,
    }
    runs = [
        {"name": "small-fp32-keras-c8", "ok_per_s": 20.0, "vs_raw": 0.7, "cpu_account": account(60.0, rest)},
        {"name": "small-int8-keras-c8", "ok_per_s": 40.0, "vs_raw": 0.6},  # older run: no account
    ]
    write(tmp_path / "workloads.json", {"settings": {"duration": 30}, "photos_mib": {}, "runs": runs})


def test_openvino_beside_onnxruntime_raw_and_its_end_to_end_verdict(tmp_path):
    bench = {
        "runs": [ort("fp32", 2, 1, 8, 100.0), ort("fp32", 1, 1, 1, 10.0), ort("int8", 2, 1, 8, 200.0)],
        "openvino": [
            {**ort("fp32", 2, 1, 8, 106.0), "x_onnxruntime": 1.06, "runtime": "openvino 2025.1"},
            {**ort("fp32", 1, 1, 1, 15.0), "x_onnxruntime": 1.5},  # not ONNX Runtime's fastest: not the verdict's
            {**ort("int8", 2, 1, 8, 160.0), "x_onnxruntime": 0.8},
        ],
    }
    workloads(tmp_path)
    text = "\n".join(openvino_section(tmp_path, Figures(tmp_path, bench)))
    assert "| int8 | 2x1 b8 | 200.0 | 160.0 | 0.8 |" in text
    assert "fp32 at 1.06× ONNX Runtime's rate (2x1 b8: 106.0 vs 100.0 img/s) and INT8 at 0.8×" in text
    # inference is 60 of 81 ms of CPU per image: 1 / (0.26 + 0.74 / 1.06) = 1.04
    assert "1.04× with inference at 74% of it" in text
    assert "No end-to-end run with RUNTIME=openvino is measured here" in text  # and none beside a drift reference
    assert openvino_section(tmp_path, Figures(tmp_path, {"runs": bench["runs"]})) == []

    def end_to_end(
        c8_img_s: float,
        c1_img_s: float,
        c1_p50_ms: float,
        int8_img_s: float | None = None,
        drift: float = 1.0,
        moved: float = 0.0,
    ) -> str:
        """The section with OpenVINO runs beside the ONNX Runtime ones; ONNX Runtime's raw rate before the
        OpenVINO stacks `drift` times the one before the ONNX Runtime stacks (50.0 img/s), and `moved` more after
        each stack than before it."""
        workloads(tmp_path)
        data = json.loads((tmp_path / "workloads.json").read_text())
        data["runs"] += [
            {"name": "small-fp32-keras-c1", "clients": 1, "ok_per_s": 24.0, "p50_ms": 40.0},
            {"name": "small-fp32-keras-c1-runtimeopenvino", "runtime": "openvino", "variant": "fp32", "clients": 1},
            {"name": "small-fp32-keras-c8-runtimeopenvino", "runtime": "openvino", "variant": "fp32", "clients": 8},
        ]
        data["runs"][-2] |= {"ok_per_s": c1_img_s, "p50_ms": c1_p50_ms}
        data["runs"][-1] |= {"ok_per_s": c8_img_s, "p50_ms": 160.0}
        if int8_img_s is not None:  # beside small-int8-keras-c8 (40.0 img/s)
            ov = {"runtime": "openvino", "variant": "int8", "ok_per_s": int8_img_s}
            data["runs"].append({"name": "small-int8-keras-c8-runtimeopenvino", **ov})
        for run in data["runs"]:
            run.setdefault("clients", 8)
            run.setdefault("p50_ms", 160.0)
            run["raw_onnxruntime_img_s"] = 50.0 * (drift if run.get("runtime") == "openvino" else 1.0)
            run["raw_onnxruntime_after_img_s"] = run["raw_onnxruntime_img_s"] * (1 + moved)
        write(tmp_path / "workloads.json", data)
        return "\n".join(openvino_section(tmp_path, Figures(tmp_path, bench)))

    # ONNX Runtime: 20.0 img/s at 8 clients; 24.0 img/s and p50 40.0 ms at 1 client
    text = end_to_end(20.2, 26.0, 36.0)
    assert "fp32, 1 client: 26.0 against 24.0 img/s, p50 36.0 against 40.0 ms, drift 1.0×; corrected 1.083× the" in text
    assert (
        "fp32, 8 clients: 20.2 against 20.0 img/s, p50 160.0 against 160.0 ms, drift 1.0×; corrected 1.01× the" in text
    )
    assert "fp32: it wins end to end on this machine; RUNTIME=openvino is worth setting here" in text
    assert "INT8" not in text.split("End to end")[1], "no INT8 run with RUNTIME=openvino: no INT8 verdict"
    assert "fp32: it is level end to end" in end_to_end(20.2, 24.3, 40.5), "within 3 % both ways: noise"
    assert "(better or worse: by more than this run's noise in img/s or p50, 3%)" in text
    # the machine's speed moved by 10 % during a stack: 8 % more img/s at 1 client and 5 % at 8 are within it
    assert "fp32: it wins end to end" in end_to_end(21.0, 26.0, 37.0)
    text = end_to_end(21.0, 26.0, 37.0, moved=0.1)
    assert "fp32: it is level end to end" in text
    assert "in img/s or p50, 10%, the most ONNX Runtime's raw rate moved between the start and the end of one" in text
    assert "fp32: it does not win end to end" in end_to_end(23.0, 26.0, 42.0), "a lone request 5 % slower is no win"
    assert "fp32: it does not win" in end_to_end(19.0, 26.0, 36.0), "5 % fewer answers at 8 clients is no win"
    # each variant judged on its own runs: INT8 faster end to end while fp32 is slower, and the other way round
    text = end_to_end(19.0, 26.0, 36.0, int8_img_s=48.0)
    assert (
        "INT8, 8 clients: 48.0 against 40.0 img/s, p50 160.0 against 160.0 ms, drift 1.0×; corrected 1.2× the" in text
    )
    assert "fp32: it does not win end to end on this machine; keep the default" in text
    assert "INT8: it wins end to end on this machine; RUNTIME=openvino is worth setting here" in text
    text = end_to_end(23.0, 26.0, 36.0, int8_img_s=36.0)
    assert "fp32: it wins end to end" in text
    assert "INT8: it does not win end to end" in text
    # OpenVINO's stacks ran while the machine was 20 % faster: 1.15x the img/s is 0.96x of ONNX Runtime's
    text = end_to_end(23.0, 27.6, 34.0, drift=1.2)
    assert "fp32, 8 clients: 23.0 against 20.0 img/s, p50 160.0 against 160.0 ms, drift 1.2×; corrected 0.958×" in text
    assert "corrected 0.958× the img/s and 1.2× the p50, worse" in text
    assert "fp32: it does not win end to end" in text
    assert "fp32: it wins end to end" in end_to_end(23.0, 27.6, 34.0), "the same figures without the drift: a win"
    workloads(tmp_path)  # runs without ONNX Runtime's reference beside them (older results): no verdict
    data = json.loads((tmp_path / "workloads.json").read_text())
    data["runs"].append({**data["runs"][0], "name": "small-fp32-keras-c8-runtimeopenvino", "runtime": "openvino"})
    write(tmp_path / "workloads.json", data)
    text = "\n".join(openvino_section(tmp_path, Figures(tmp_path, bench)))
    assert "No end-to-end run with RUNTIME=openvino is measured here beside ONNX Runtime's drift reference" in text


def test_cpu_account_per_part_and_the_bound_it_puts_on_end_to_end(tmp_path):
    workloads(tmp_path)
    text = "\n".join(cpu_account_section(tmp_path))
    # parts in request order, supervisord + model service together, inference / all = 60 / 81
    assert (
        "| small-fp32-keras-c8 | 20.0 | 2.0 | 8.0 | 1.0 | 4.0 | 60.0 | 5.0 | 1.0 | 81.0 | 0.741 | 0.7 | 0.02 |" in text
    )
    assert "small-int8" not in text
    assert cpu_account_section(tmp_path / "missing") == []


def goodput(rate64: float, p99_160: float) -> dict:
    run = {"duration_s": 20.0, "p50_ms": 400.0, "max_ms": 3500.0, "shed_rate": 0.0, "statuses": {"200": 400}}
    admission = {
        "max_inflight": 32,
        "retry_after_s": 2,
        "max_inflight_source": "rate",
        "retry_after_source": "rate",
        "floor": 24,
        "from_rate": 32,
        "expected_latency_s": 1.6,
        "latency_target_s": 1.6,
        "capacity": {"workers": 2, "batch_size": 8, "img_s": 20.0, "source": "model card"},
    }
    return {
        "runs": {
            "8": {**run, "ok_per_s": 20.0, "p99_ms": 600.0},
            "64": {**run, "ok_per_s": rate64, "p99_ms": 2000.0, "shed_rate": 0.5, "rounds": 2},
            "160": {**run, "ok_per_s": 19.0, "p99_ms": p99_160, "shed_rate": 0.8},
        },
        "ratio_64_vs_8": round(rate64 / 20.0, 3),
        "p99_160_ms": p99_160,
        "mode": "goodput",
        "admission": admission,
    }


def test_goodput_ratio_p99_and_the_derived_admission(tmp_path):
    write(tmp_path / "goodput.json", goodput(19.2, 2800.0))
    text = "\n".join(shedding_section(tmp_path))
    assert "| 64 (honour Retry-After), 2 windows | 20.0 | 19.2 |" in text and "| 160 | 20.0 | 19.0 |" in text
    assert "64 clients over 8: 0.96 (target ≥ 0.95: met, +0.01 (+1.1%))" in text
    assert "p99 of the answered requests 2800.0 ms (target ≤ 3000 ms: met, -200 ms (-6.7%))" in text
    assert "MAX_INFLIGHT 32, from rate: floor (WORKERS 2 + 1) × BATCH_SIZE 8 = 24" in text
    assert "Retry-After 2 s, from rate: the time the admitted requests take" in text
    write(tmp_path / "goodput.json", goodput(18.0, 3100.0))
    text = "\n".join(shedding_section(tmp_path))
    assert "0.9 (target ≥ 0.95: **missed**" in text and "3100.0 ms (target ≤ 3000 ms: **missed**" in text
    data = goodput(19.2, 2800.0)
    data["admission"].update(retry_after_s=5, retry_after_source="RETRY_AFTER_S")
    write(tmp_path / "goodput.json", data)
    assert "- Retry-After 5 s, from RETRY_AFTER_S.\n" in "\n".join(shedding_section(tmp_path)) + "\n"


def test_an_old_results_folder_renders_without_the_new_sections(tmp_path):
    write(tmp_path / "run" / "bench.json", {"runs": [ort("fp32", 1, 1, 1, 10.0)], "settings": {}})
    text = "\n".join(document(tmp_path / "run", load(tmp_path / "run"), "run"))
    for heading in ("OpenVINO", "serving peers", "CPU account", "Goodput"):
        assert heading not in text
    assert "## Raw model benchmark" in text


def test_v2_section_judges_both_ratios_and_shows_perf_analyzer_beside_them(tmp_path):
    run = tmp_path / "20260101T000000Z"
    bench = {"workers": 2, "threads": 1, "batch_size": 8, "clients": 8, "fp32_clients": 16}
    bench |= {"predict_ok_per_s": 10.0, "v2_bytes_ok_per_s": 9.7, "v2_fp32_ok_per_s": 11.0, "raw_ort_img_s": 12.0}
    bench |= {"ratio_v2_bytes_to_predict": 0.97, "ratio_v2_fp32_to_raw_ort": 0.917}
    write(run / "bench_v2.json", bench)
    write(run / "bench.json", {"machine": MACHINE})
    levels = [
        {"concurrency": 1, "throughput": 8.1, "p50_ms": 120.0, "p90_ms": 130.0, "p99_ms": 150.0, "cache_hits": 0.0},
        {"concurrency": 64, "error": "service at its admission limit; retry later", "shed": True},
    ]
    write(tmp_path / "20260102T000000Z" / "perf_analyzer.json", {"tool": "perf_analyzer", "levels": levels})
    write(tmp_path / "20260102T000000Z" / "matrix.json", {"machine": MACHINE})
    text = "\n".join(v2_section(run))
    bytes_row = next(line for line in text.splitlines() if line.startswith("| V2 BYTES"))
    fp32_row = next(line for line in text.splitlines() if line.startswith("| V2 FP32"))
    assert "| 0.97 | ≥ 0.95 | met |" in bytes_row and "| 0.917 | ≥ 0.95 | **missed** |" in fp32_row
    assert "1 image per request, 16 clients | 11.0 | raw ONNX Runtime 12.0 |" in fp32_row
    bench["fp32_by_batch"] = {
        "1": {"ok_per_s": 11.0, "ratio_to_raw_ort": 0.917, "api_cpu_ms": 6.0},
        "8": {"clients": 2, "ok_per_s": 11.5, "ratio_to_raw_ort": 0.958, "api_cpu_ms": 3.0},
    }
    write(run / "bench_v2.json", bench | {"fp32_batch": 1, "api_cpu_ms_per_answer": {"predict": 7.0, "fp32": 6.0}})
    rows = [line for line in "\n".join(v2_section(run)).splitlines() if line.startswith("| V2 FP32")]
    assert len(rows) == 2 and "| 0.917 | ≥ 0.95 | **missed** |" in rows[0]
    assert "8 images per request, 2 clients | 11.5 |" in rows[1] and "| 0.958 | ≥ 0.95 | met |" in rows[1]
    assert "per answered image, ms: predict 7.0, fp32 6.0, FP32 at 8 images per request 3.0." in "\n".join(
        v2_section(run)
    )
    assert "| 1 | 8.1 | 120.0 | 130.0 | 150.0 | 0.0 | ok |" in text  # from the newest folder that has it
    assert "| 64 | – | – | – | – | – | service at its admission limit; retry later |" in text
    assert v2_section(tmp_path / "elsewhere" / "20260101T000000Z") == []  # no run anywhere has either file


def test_the_report_says_which_file_and_run_each_part_comes_from(tmp_path):
    from stress_test import results

    run, other = tmp_path / "20260102T000000Z", tmp_path / "20260101T000000Z"
    results.write_json(run / "bench.json", {"runs": [ort("fp32", 1, 1, 1, 10.0)], "settings": {}, "machine": MACHINE})
    level = {"concurrency": 1, "throughput": 8.1, "p50_ms": 120.0, "p90_ms": 130.0, "p99_ms": 150.0, "cache_hits": 0.0}
    write(other / "perf_analyzer.json", {"tool": "perf_analyzer", "levels": [level]})  # no write time recorded
    write(other / "bench.json", {"machine": MACHINE})
    stamped = results.written_at(run / "bench.json")
    assert stamped and json.loads((run / results.MANIFEST).read_text()) == {"bench.json": stamped}
    text = "\n".join(document(run, load(run), "run"))
    assert f"| bench.json | 20260102T000000Z | {stamped} |" in text
    assert "| perf_analyzer.json | 20260101T000000Z | not recorded |" in text
    assert "written.json" not in text and "| goodput.json" not in text


def test_perf_analyzer_table_shows_the_servers_side_when_measured(tmp_path):
    level = {"concurrency": 2, "throughput": 20.9, "p50_ms": 88.6, "p90_ms": 102.2, "p99_ms": 247.9, "cache_hits": 0.0}
    write(tmp_path / "run" / "perf_analyzer.json", {"tool": "perf_analyzer", "levels": [level]})
    assert "infer ms" not in "\n".join(v2_section(tmp_path / "run"))
    level |= {"server_queue_ms": 1.1, "server_input_ms": 3.0, "server_infer_ms": 81.3}
    write(tmp_path / "run" / "perf_analyzer.json", {"tool": "perf_analyzer", "levels": [level]})
    text = "\n".join(v2_section(tmp_path / "run"))
    assert "| queue ms | decode ms | infer ms |" in text and "| 1.1 | 3.0 | 81.3 |" in text


def test_recommended_settings_name_the_runtime_to_set(tmp_path):
    assert config_section(tmp_path) == []
    fast = {"workers": 2, "threads": 1, "batch": 8, "img_s": 170.0, "p50_ms": 90.0, "p95_ms": 95.0}
    lone = {"workers": 1, "threads": 2, "batch": 1, "img_s": 60.0, "p50_ms": 16.0, "p95_ms": 17.0}
    recommended = {"throughput": {**fast, "runtime": "openvino 2026.4.1"}, "latency": lone}  # older rows: no runtime
    write(tmp_path / "config_search.json", {"variant": "int8", "recommended": recommended})
    text = "\n".join(config_section(tmp_path))
    assert "For throughput: `WORKERS=2 THREADS=1 BATCH_SIZE=8 MODEL_VARIANT=int8 RUNTIME=openvino` (170.0 img/s" in text
    assert "For latency: `WORKERS=1 THREADS=2 BATCH_SIZE=1 MODEL_VARIANT=int8 RUNTIME=onnxruntime`" in text
