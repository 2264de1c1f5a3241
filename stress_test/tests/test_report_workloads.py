"""The issue-9 report section reads workloads.json / decode_profile.json and judges each target."""

from __future__ import annotations

import json

from stress_test import report_workloads


def run(name, ok, raw, clients=8, **kw):
    return {
        "name": name,
        "ok_per_s": ok,
        "raw_img_s": raw,
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
        run("12mp-fp32-keras-c8", 18, 57),
        run("12mp-fp32-fast-c8", 30, 57),
        run("small-int8-keras-c8", 120, 180),
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
    got = {t["target"].split(" (")[0].split(",")[0]: t for t in report_workloads.targets(runs)}
    results = [t["result"] for t in report_workloads.targets(runs)]
    # 30/57 = 0.53 < 0.55; 18/57 = 0.32 ≥ 0.30; 53/57 = 0.93 ≥ 0.90; 120/180 = 0.67 < 0.70; 40 - 34 = 6 > 5 ms
    assert results == ["**missed**", "met", "met", "**missed**", "**missed**", "met"], results
    assert got["Redis traffic per request"]["value"] == 300.0  # the 1-client run's 900 is not per request
    text = "\n".join(report_workloads.section(tmp_path))
    assert "Targets (issue 9)" in text and "did not help" not in text and "helped" in text and "60" in text


def test_missing_results_give_no_section(tmp_path):
    assert report_workloads.section(tmp_path) == []
