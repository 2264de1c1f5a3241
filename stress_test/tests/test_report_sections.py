"""The report's sections from small hand-made result files: workloads (small and 12 MP photos, each target
judged) and the containers' scaling beside the processes."""

from __future__ import annotations

import json
from pathlib import Path

from stress_test.report_data import lone_request_parts, machine_rate, workload_targets
from stress_test.report_sections import compose_section, workloads_section


def run(name, ok, raw, clients=8, **kw):
    return {
        "name": name,
        "ok_per_s": ok,
        "raw_img_s": raw,
        "raw_onnxruntime_img_s": raw,
        "vs_raw": round(ok / raw, 3),
        "clients": clients,
        "p50_ms": 40.0,
        "raw_b1_p50_ms": 34.0,
        "redis_kib_per_request": 300.0,
        "load_client_share": 0.02,
        "stages_ms": {"mean_batch": 4.0},
        "cpu_cores_used": {"model": 1.7},
        **kw,
    }


def test_targets_and_section(tmp_path):
    runs = [
        run("small-fp32-keras-c1", 20, 57, clients=1, redis_kib_per_request=900.0),
        run("small-fp32-keras-c8", 53, 57),
        run("12mp-fp32-keras-c8", 26, 57),
        run("12mp-fp32-fast-c8", 36, 57),
        run("small-int8-keras-c8", 150, 180),
        run("small-int8-keras-c8-read_ahead0", 120, 180),
        run("small-fp32-keras-c8-batch_share0", 47, 57),
    ]
    (tmp_path / "workloads.json").write_text(json.dumps({"settings": {"duration": 30}, "photos_mib": {}, "runs": runs}))
    (tmp_path / "decode_profile.json").write_text(
        json.dumps(
            {
                "agreement_12mp": {"top1_agreement": 1.0},
                "decode_ms_12mp": {"keras": 60, "fast": 15},
                "decode_ms_small": {"keras": 2, "fast": 2},
            }
        )
    )
    got = {t["target"].split(" (")[0].split(",")[0]: t for t in workload_targets(runs)}
    results = [t["result"] for t in workload_targets(runs)]
    # small: 53/57 = 0.93 ≥ 0.90, INT8 150/180 = 0.83 ≥ 0.80, 40 - 34 = 6 > 5 ms; 12 MP: fast 36/57 = 0.63 < 0.65,
    # keras 26/57 = 0.456 ≥ 0.45; Redis 300 ≤ 320 KiB
    assert results == ["met", "met", "**missed**", "**missed**", "met", "met"], results
    assert got["Redis traffic per request"]["value"] == 300.0  # the 1-client run's 900 is not per request
    assert got["1-client p50 minus raw batch-1 p50"]["by"] == "+1 ms (+20.0%)"
    text = "\n".join(workloads_section(tmp_path))
    assert "### Targets" in text and "60" in text
    assert "measured again after each stack" not in text  # no raw rate after a stack: no noise to state
    assert "Fair-share batches (BATCH_SHARE=1, default) helped: small fp32 with 8 clients 53 img/s" in text
    assert (
        "Reading the next batch in the transaction that answers the last (READ_AHEAD=1, default) helped: small INT8 "
        "with 8 clients 150 img/s (mean batch 4.0) against answering, then reading (READ_AHEAD=0) 120 img/s" in text
    )

    def batch_share_verdict(greedy_img_s: float, int8_raw_after: float | None = None, **greedy_raw) -> str:
        """What the section says of fair-share batches (53 img/s, raw 57 before and after) against greedy ones at
        `greedy_img_s`; the INT8 stack's raw rate `int8_raw_after` after it (180 before)."""
        greedy = run("small-fp32-keras-c8-batch_share0", greedy_img_s, 57, **greedy_raw)
        others = [r | {"raw_onnxruntime_after_img_s": r["raw_onnxruntime_img_s"]} for r in runs[:-1]]
        if int8_raw_after:
            others[4]["raw_onnxruntime_after_img_s"] = int8_raw_after
        data = {"settings": {"duration": 30}, "photos_mib": {}, "runs": others + [greedy]}
        (tmp_path / "workloads.json").write_text(json.dumps(data))
        return "\n".join(workloads_section(tmp_path)).split("Fair-share batches (BATCH_SHARE=1, default) ")[1]

    assert batch_share_verdict(52).startswith("made no difference beyond this run's noise (3%)"), "1.9 % apart"
    assert batch_share_verdict(55).startswith("hurt"), "greedy 3.8 % ahead"
    assert batch_share_verdict(55, int8_raw_after=171.0).startswith(  # the machine slowed by 5 % during a stack
        "made no difference beyond this run's noise (5%, the most ONNX Runtime's raw rate moved between the start "
        "and the end of one stack)"
    )
    # greedy's stack: 55 img/s, the machine at 57 before it and 61 after (59 while it ran): 0.932 against 0.93
    text = batch_share_verdict(55, raw_onnxruntime_after_img_s=61.0)
    section = "\n".join(workloads_section(tmp_path))
    assert "ONNX Runtime's raw rate is measured again after each stack: it moved by up to 7% in this run" in section
    assert text.startswith("made no difference beyond this run's noise (7%, the most ONNX Runtime's raw rate moved")
    assert "53 img/s (mean batch 4.0) against greedy batches 55 img/s (mean batch 4.0): 0.930 against 0.932 x" in text


def test_a_stacks_machine_rate_is_the_mean_of_the_raw_rates_around_it():
    assert machine_rate({"raw_onnxruntime_img_s": 40.0, "raw_onnxruntime_after_img_s": 44.0}) == 42.0
    assert machine_rate({"raw_onnxruntime_img_s": 40.0}) == 40.0  # older results: the rate before it
    assert machine_rate({"raw_img_s": 40.0}) is None


def test_pyspy_profiles_give_each_groups_busy_share(tmp_path):
    profile = {
        "api": {"busy": 0.585, "top": [["ImageFile.load (PIL/ImageFile.py:425)", 0.255]]},
        "model": {"busy": 0.96, "top": [["Session.run (onnxruntime/capi/x.py:395)", 0.879]]},
    }
    runs = [run("small-int8-keras-c8", 150, 180, pyspy=profile), run("small-fp32-keras-c8", 53, 57)]
    (tmp_path / "workloads.json").write_text(json.dumps({"settings": {"duration": 30}, "photos_mib": {}, "runs": runs}))
    text = "\n".join(workloads_section(tmp_path))
    assert "- small-int8-keras-c8 api (58% busy): ImageFile.load (PIL/ImageFile.py:425) 26%" in text
    assert "- small-int8-keras-c8 model (96% busy): Session.run (onnxruntime/capi/x.py:395) 88%" in text
    assert "- small-fp32-keras-c8 " not in text  # not profiled


def test_a_lone_requests_gap_is_split_into_parts_that_add_up_to_it(tmp_path):
    stages = {
        "api_decode_per_image": 1.5,
        "queue_wait": 0.5,
        "preprocess_per_image": 0.25,
        "inference_per_image": 35.0,
        "api_request": 39.0,
    }
    lone = run("small-fp32-keras-c1", 20, 57, clients=1, stages_ms=stages)  # p50 40, raw batch-1 p50 34
    parts = lone_request_parts(lone)
    assert parts == {
        "gap": 6.0,
        "inference": 1.0,
        "api_decode": 1.5,
        "queue_wait": 0.5,
        "normalise": 0.25,
        "api_other": 1.75,  # 39 - 1.5 - 0.5 - 0.25 - 35
        "outside_api": 1.0,  # the client's 40 - the API's 39
    }
    assert sum(v for k, v in parts.items() if k != "gap") == parts["gap"]
    busy = run("small-fp32-keras-c8", 53, 57, stages_ms=stages)
    assert lone_request_parts(busy) is None  # 8 clients: queueing, not a lone request
    assert lone_request_parts(run("x-c1", 20, 57, clients=1)) is None  # no stage profile: no split
    (tmp_path / "workloads.json").write_text(
        json.dumps({"settings": {"duration": 30}, "photos_mib": {}, "runs": [lone, busy]})
    )
    text = "\n".join(workloads_section(tmp_path))
    assert "### Where a lone request's time goes" in text
    assert "| small-fp32-keras-c1 | 6.0 | 1.0 | 1.5 | 0.5 | 0.25 | 1.75 | 1.0 |" in text
    assert "| small-fp32-keras-c8 |" not in text.split("### Where a lone request's time goes")[1]


def test_missing_results_give_no_section(tmp_path):
    assert workloads_section(tmp_path) == []


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
    assert "| 1 | 20.0 | 1.0 | 400 | 45 | 25.0 | 1.0 | 42 | - | - | 0.8 |" in text  # older files: no raw ratios
    assert "| 2 | 36.0 | 1.8 | 420 | 46 | 45.0 | 1.8 | 43 | - | - | 0.8 |" in text
    assert "99.0" not in text  # INT8 rows are not the process-based counterpart


def test_containers_and_processes_each_over_the_raw_rate_measured_before_them(tmp_path):
    runs = [
        {"models": 2, "sat_ok_per_s": 30.0, "x_one": 1.9, "sat_p50_ms": 400, "lat1_p50_ms": 60, "vs_raw_same": 0.81}
    ]
    procs = {"variant": "fp32", "workers": 2, "threads": 1, "batch": 8, "sat_ok_per_s": 36.0, "lat1_p50_ms": 55}
    write(tmp_path, "compose_matrix.json", {"settings": {"batch_size": 8}, "runs": runs})
    write(tmp_path, "matrix.json", {"configs": [procs | {"vs_raw_same": 0.88}]})
    text = "\n".join(compose_section(tmp_path))
    assert "| containers x raw | processes x raw | containers / processes |" in text
    assert "| 2 | 30.0 | 1.9 | 400 | 60 | 36.0 | - | 55 | 0.81 | 0.88 | 0.83 |" in text


def test_not_run_and_failed_runs_are_said(tmp_path):
    assert "Not run" in "\n".join(compose_section(tmp_path))
    write(tmp_path, "compose_matrix.json", {"settings": {}, "runs": [{"models": 1, "error": "RuntimeError: boom"}]})
    text = "\n".join(compose_section(tmp_path))
    assert "1 container(s) failed: RuntimeError: boom" in text and "No successful single-container run" in text


def test_end_to_end_section_says_whether_the_load_went_through_nginx(tmp_path):
    from stress_test.report_data import Figures
    from stress_test.report_sections import e2e_section

    config = {"config": "fp32-w2-t1-b8", "variant": "fp32", "sat_ok_per_s": 10.0, "locust": []}
    matrix = {"settings": {"gunicorn_workers": 2, "gunicorn_threads": 16}, "configs": [config]}
    older = "\n".join(e2e_section(Figures(tmp_path, {}, matrix)))
    behind_nginx = "\n".join(e2e_section(Figures(tmp_path, {}, {**matrix, "front": "nginx"})))
    assert "without nginx" in older and "gunicorn 2 x 16 threads" in older
    assert "nginx in front" in behind_nginx and "without nginx" not in behind_nginx


XEON = {"cpu_model": "Xeon", "vendor": "GenuineIntel", "family": 6, "model": "143", "cores": 2, "flags": {"avx2": True}}
EPYC = {**XEON, "cpu_model": "EPYC", "vendor": "AuthenticAMD", "family": 25}


def results_folder(root: Path, name: str, files: dict[str, dict]) -> Path:
    folder = root / name
    folder.mkdir()
    for file, data in files.items():
        write(folder, file, data)
    return folder


def test_a_benchmark_writes_into_the_newest_run_of_this_kind_of_machine_never_into_another_machines(
    tmp_path, monkeypatch
):
    from stress_test import results

    monkeypatch.setattr(results, "RESULTS", tmp_path)
    ours = results_folder(tmp_path, "20260101T000000Z", {"bench.json": {"machine": XEON}})
    epyc = results_folder(tmp_path, "20260102T000000Z", {"bench.json": {"machine": EPYC}})  # newer, another kind
    results_folder(tmp_path, "20260103T000000Z", {"matrix.json": {"machine": XEON}})  # newest, but no `make bench`
    assert results.run_dir_of_this_machine(XEON) == ours
    assert results.bench_run_of_this_machine(EPYC) == epyc
    assert results.bench_run_of_this_machine({**EPYC, "model": "17"}) is None  # another model number
    fresh = results.run_dir_of_this_machine({**XEON, "cores": 4})  # the same CPU with other cores usable
    assert fresh.parent == tmp_path and fresh not in (ours, epyc) and not any(fresh.iterdir())
    assert results.run_dir_of_this_machine() not in (ours, epyc)  # this machine, described: neither of these


def test_the_report_borrows_only_a_standalone_tools_file_and_only_from_the_same_kind_of_machine(tmp_path):
    from stress_test.report_data import find_path
    from stress_test.report_sections import sources_section

    same = results_folder(tmp_path, "20260101T000000Z", {"bench.json": {"machine": XEON}, "peers.json": {}})
    results_folder(tmp_path, "20260102T000000Z", {"peers.json": {"machine": {**XEON, "flags": {"avx2": False}}}})
    results_folder(tmp_path, "20260103T000000Z", {"matrix.json": {"machine": EPYC}, "peers.json": {}})
    results_folder(tmp_path, "20260104T000000Z", {"peers.json": {}, "compose_matrix.json": {"runs": []}})
    this = results_folder(tmp_path, "20260105T000000Z", {"bench.json": {"machine": {**XEON, "clock_ghz": 3.1}}})
    # Newest first, the siblings' peers.json are: of an unknown machine, of an EPYC, of other flags, of this kind.
    assert find_path(this, "peers.json") == same / "peers.json"
    # A file the report reads from its own folder only is not listed from another (nor of another machine).
    assert find_path(this, "compose_matrix.json") is None
    assert find_path(this, "bench.json") == this / "bench.json"
    rows = [line for line in sources_section(this, "this") if line.startswith("| ") and "json" in line]
    assert [row.split(" | ")[:2] for row in rows] == [["| bench.json", this.name], ["| peers.json", same.name]]


def test_nothing_is_borrowed_for_a_folder_whose_machine_is_unknown(tmp_path):
    from stress_test.report_data import find_path

    results_folder(tmp_path, "20260101T000000Z", {"bench.json": {"machine": XEON}, "perf_analyzer.json": {}})
    this = results_folder(tmp_path, "20260102T000000Z", {"bench_v2.json": {}})
    assert find_path(this, "bench_v2.json") == this / "bench_v2.json"
    assert find_path(this, "perf_analyzer.json") is None


def test_containers_measured_hours_after_the_processes_say_so(tmp_path):
    from stress_test import results

    write(tmp_path, "compose_matrix.json", {"settings": {}, "runs": [{"models": 1, "sat_ok_per_s": 20.0}]})
    write(tmp_path, "matrix.json", {"configs": []})
    assert "apart" not in "\n".join(compose_section(tmp_path))  # times not recorded: nothing said

    def written(compose: str) -> str:
        times = {"compose_matrix.json": compose, "matrix.json": "2026-01-01T09:00:00Z"}
        (tmp_path / results.MANIFEST).write_text(json.dumps(times))
        return "\n".join(compose_section(tmp_path))

    assert "apart" not in written("2026-01-01T09:20:00Z")  # one sitting
    assert (
        "measured 7.5 h apart (2026-01-01T16:30:00Z and 2026-01-01T09:00:00Z); this machine's speed moves"
        in written("2026-01-01T16:30:00Z")
    )
