"""The split-cores benchmark's arithmetic and its report section (the measurement itself is `make bench-split`)."""

from __future__ import annotations

import json
from collections import namedtuple

import pytest

from stress_test.report_sections import split_cores_section
from stress_test.split_cores import busy, split, summarize

Times = namedtuple("Times", "user system idle iowait")


def test_the_model_gets_the_first_cores_and_everything_else_the_rest():
    assert split({0, 1}, 1) == ({0}, {1})
    assert split({3, 1, 0, 2}, 2) == ({0, 1}, {2, 3})
    with pytest.raises(SystemExit, match="at least one more"):
        split({0}, 1)


def test_busy_is_the_mean_share_of_the_groups_cores_not_idle_or_waiting():
    before = [Times(0, 0, 0, 0), Times(0, 0, 0, 0)]
    after = [Times(6, 2, 1, 1), Times(1, 0, 9, 0)]
    assert busy(before, after, {0}) == 0.8
    assert busy(before, after, {1}) == 0.1
    assert busy(before, after, {0, 1}) == 0.45


def window(load: str, ok_per_s: float, round_: int, p50: float | None = None) -> dict:
    return {
        "load": load,
        "round": round_,
        "clients": 1 if load == "lone" else 8,
        "ok_per_s": ok_per_s,
        "p50_ms": p50,
        "model_cores_busy": 0.9,
        "http_cores_busy": 0.2,
    }


RAW = [  # before round 1, between rounds 1 and 2, after round 2
    {"batch": {"img_s": 30.0}, "batch_1": {"p50_ms": 34.0}},
    {"batch": {"img_s": 32.0}, "batch_1": {"p50_ms": 36.0}},
    {"batch": {"img_s": 28.0}, "batch_1": {"p50_ms": 38.0}},
]


def test_each_round_is_judged_over_the_raw_rate_measured_around_it():
    windows = [window("predict", 28.0, 1), window("predict", 27.0, 2), window("fp32", 31.0, 1), window("fp32", 29.0, 2)]
    windows += [window("lone", 24.0, 1, 41.0), window("lone", 24.0, 2, 40.0)]
    out = summarize("fp32", windows, RAW)
    assert out["raw_img_s"] == 30.0 and out["noise"] == 0.125  # 32 → 28
    predict, fp32, lone = out["loads"]["predict"], out["loads"]["fp32"], out["loads"]["lone"]
    assert predict["ok_per_s"] == 27.5 and predict["vs_raw"] == 0.902 and predict["met"] is True  # 28/31, 27/30
    assert fp32["vs_raw"] == 0.983 and fp32["target"] == 0.95 and fp32["met"] is True  # 31/31, 29/30
    assert lone["p50_ms"] == 40.5 and lone["raw_b1_p50_ms"] == 36.0
    assert lone["gap_ms"] == 4.5 and lone["met"] is True  # 41 - 35, 40 - 37


def test_int8_is_held_to_its_own_goal():
    raw = [{"batch": {"img_s": 100.0}, "batch_1": None}] * 2
    out = summarize("int8", [window("predict", 78.0, 1)], raw)
    assert out["loads"]["predict"]["target"] == 0.8 and out["loads"]["predict"]["met"] is False


def test_the_report_section_gives_every_load_with_its_goal_and_result(tmp_path):
    windows = [window("predict", 28.0, 1), window("fp32", 27.0, 1), window("lone", 24.0, 1, 38.0)]
    data = {
        "command": "python -m stress_test.split_cores",
        "model_cores": [0],
        "other_cores": [1, 2],
        "workers": 1,
        "threads": 1,
        "batch_size": 8,
        "settings": {"READ_AHEAD": "0"},
        "variants": {"fp32": summarize("fp32", windows, RAW[:2])},
    }
    (tmp_path / "split_cores.json").write_text(json.dumps(data))
    text = "\n".join(split_cores_section(tmp_path))
    assert (
        "(1 worker × 1 thread, batch 8, READ_AHEAD=0) pinned to core 0;" in text
        and "load generator to cores 1, 2;" in text
    )
    assert "| fp32, `/predict` small photos, 8 clients | 28.0 img/s | 31.0 img/s | 0.903 | ≥ 0.9 | met |" in text
    assert "| fp32, V2 FP32 tensors, 8 clients | 27.0 img/s | 31.0 img/s | 0.871 | ≥ 0.95 | **missed** |" in text
    assert (
        "| fp32, `/predict` one at a time, 1 client | p50 38.0 ms | batch-1 p50 35.0 ms | +3.0 ms | ≤ 5.0 ms | met |"
        in text
    )
    assert "Raw ONNX Runtime moved by up to 7% (fp32) between two of its measurements in this run" in text
    data["variants"]["fp32"]["loads"]["lone"]["gap_ms"] = -0.5  # faster than raw's batch 1: no "+-"
    (tmp_path / "split_cores.json").write_text(json.dumps(data))
    assert "| -0.5 ms | ≤ 5.0 ms | met |" in "\n".join(split_cores_section(tmp_path))
    assert split_cores_section(tmp_path / "nothing") == []


def test_settings_and_the_command_that_repeats_the_run():
    import argparse

    from stress_test.split_cores import command, settings

    args = argparse.Namespace(rounds=2, setting=["READ_AHEAD=0", "BATCH_SHARE=1"], results_dir="/tmp/x")
    assert settings(args) == {"READ_AHEAD": "0", "BATCH_SHARE": "1"}
    assert (
        command(args) == "python -m stress_test.split_cores --rounds 2 --setting READ_AHEAD=0 --setting BATCH_SHARE=1"
    )
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        settings(argparse.Namespace(setting=["READ_AHEAD"]))
