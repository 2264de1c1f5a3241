"""Hardware report section of issue 9: both workloads, the targets table, the per-stage profile, fast mode.

Reads workloads.json (run_matrix.py → workloads.py) and decode_profile.json (bench_model.py) of the results
folder; returns markdown lines (make_report.py adds them with one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stress_test.results import read_json

# (target, run name, how the value is computed, goal, "min" | "max")
GOALS = [
    ("12 MP photos, PREPROCESS=fast / raw (2x1, 8 clients)", "12mp-fp32-fast-c8", "vs_raw", 0.55, "min"),
    ("12 MP photos, keras mode / raw (2x1, 8 clients)", "12mp-fp32-keras-c8", "vs_raw", 0.30, "min"),
    ("small photos fp32 / raw (2x1, 8 clients)", "small-fp32-keras-c8", "vs_raw", 0.90, "min"),
    ("small photos INT8 / raw INT8 (2x1, 8 clients)", "small-int8-keras-c8", "vs_raw", 0.70, "min"),
    ("1-user p50 minus raw batch-1 p50, small photos (ms)", "small-fp32-keras-c1", "lone_gap", 5.0, "max"),
    ("Redis traffic per request (KiB, in + out, worst 8-client run)", None, "redis", 400.0, "max"),
]


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    out = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join("–" if r.get(k) is None else str(r[k]) for k, _ in columns) + " |" for r in rows]
    return out + [""]


def _value(kind: str, run: dict | None, runs: list[dict]) -> float | None:
    if kind == "redis":
        # 8-client runs: at one request per second the heartbeats' own traffic would be counted per request
        values = [
            r["redis_kib_per_request"]
            for r in runs
            if r.get("redis_kib_per_request") is not None and r.get("clients", 0) >= 8
        ]
        return max(values) if values else None
    if run is None:
        return None
    if kind == "lone_gap":
        if run.get("p50_ms") is None or run.get("raw_b1_p50_ms") is None:
            return None
        return round(run["p50_ms"] - run["raw_b1_p50_ms"], 2)
    return run.get(kind)


def targets(runs: list[dict]) -> list[dict[str, Any]]:
    by_name = {r["name"]: r for r in runs if "error" not in r}
    rows = []
    for target, name, kind, goal, sense in GOALS:
        run = by_name.get(name) if name else None
        value = _value(kind, run, list(by_name.values()))
        met = None if value is None else (value >= goal if sense == "min" else value <= goal)
        basis = ""
        if run and kind == "vs_raw":
            basis = f"{run['ok_per_s']} vs raw {run['raw_img_s']} img/s"
        elif run and kind == "lone_gap":
            basis = f"p50 {run['p50_ms']} ms vs raw batch-1 {run['raw_b1_p50_ms']} ms"
        rows.append(
            {
                "target": target,
                "goal": f"{'≥' if sense == 'min' else '≤'} {goal}",
                "value": value,
                "result": {True: "met", False: "**missed**", None: "not measured"}[met],
                "basis": basis,
                "load_client_share": run.get("load_client_share") if run else None,
            }
        )
    return rows


def section(folder: Path) -> list[str]:
    w, d = read_json(folder / "workloads.json"), read_json(folder / "decode_profile.json")
    if not w and not d:
        return []
    lines = ["## Small and 12 MP photos (issue 9)", ""]
    if w:
        runs = w.get("runs", [])
        lines += [
            "Each stack: 2 workers x 1 thread, batch 8, raw ONNX Runtime of the same configuration measured just "
            f"before it; closed-loop clients send unique bytes per request for {w['settings']['duration']} s. "
            f"Photos: small {w['photos_mib'].get('small')} MiB, 12 MP {w['photos_mib'].get('12mp')} MiB on "
            "average (stress_test/phone_photos.py). The load generator runs on the same cores: its share of the "
            "CPU the stack and it used is given beside each figure.",
            "",
            "### Targets (issue 9)",
            "",
        ]
        lines += _table(
            targets(runs),
            [
                ("target", "target"),
                ("goal", "goal"),
                ("value", "measured"),
                ("result", "result"),
                ("basis", "basis"),
                ("load_client_share", "load gen CPU share"),
            ],
        )
        ok = [r for r in runs if "error" not in r]
        lines += ["### Runs", ""] + _table(
            ok,
            [
                ("name", "run"),
                ("ok_per_s", "img/s"),
                ("p50_ms", "p50 ms"),
                ("p95_ms", "p95 ms"),
                ("raw_img_s", "raw img/s"),
                ("vs_raw", "x raw"),
                ("raw_b1_p50_ms", "raw b1 p50 ms"),
                ("redis_kib_per_request", "Redis KiB/req"),
                ("load_client_share", "load gen share"),
            ],
        )
        prof = [
            {
                "name": r["name"],
                **(r.get("stages_ms") or {}),
                **{f"cores_{k}": v for k, v in (r.get("cpu_cores_used") or {}).items()},
            }
            for r in ok
        ]
        lines += [
            "### Per-stage profile of each run",
            "",
            "Stage means from the service's own /metrics (scraped before and after the run); CPU cores used by "
            "each process group (psutil) over the run.",
            "",
        ] + _table(
            prof,
            [
                ("name", "run"),
                ("api_decode_per_image", "API decode ms/img"),
                ("preprocess_per_image", "worker normalise ms/img"),
                ("inference_per_image", "inference ms/img"),
                ("mean_batch", "mean batch"),
                ("queue_wait", "queue wait ms"),
                ("api_request", "API /predict ms"),
                ("cores_api", "API cores"),
                ("cores_model", "worker cores"),
                ("cores_redis", "Redis cores"),
                ("cores_load_client", "load gen cores"),
                ("cores_other", "other load cores"),
            ],
        )
        spied = [r for r in ok if isinstance(r.get("pyspy_top"), dict)]
        if spied:
            lines += ["### py-spy: where each process group's samples were (leaf function, share of samples)", ""]
            for r in spied:
                for group, top in r["pyspy_top"].items():
                    shown = "; ".join(f"{frame} {share:.0%}" for frame, share in top[:6])
                    lines.append(f"- {r['name']} {group}: {shown}")
            lines.append("")
        by_name = {r["name"]: r for r in ok}
        shared, greedy = by_name.get("small-fp32-keras-c8"), by_name.get("small-fp32-keras-c8-batch_share0")
        if shared and greedy:
            verdict = "helped" if shared["vs_raw"] > greedy["vs_raw"] else "did not help"
            lines += [
                f"- Fair-share batches (BATCH_SHARE=1, default) {verdict}: small fp32 with 8 clients "
                f"{shared['ok_per_s']} img/s ({shared['vs_raw']} x raw, mean batch "
                f"{(shared.get('stages_ms') or {}).get('mean_batch')}) against greedy batches {greedy['ok_per_s']}"
                f" img/s ({greedy['vs_raw']} x raw, mean batch {(greedy.get('stages_ms') or {}).get('mean_batch')}).",
                "",
            ]
        for r in runs:
            if "error" in r:
                lines.append(f"- {r['name']} failed: {r['error'][:300]}")
    if d:
        lines += ["### PREPROCESS=fast against keras mode (12 MP photos)", ""]
        a = d.get("agreement_12mp") or {}
        lines += _table(
            [{"metric": k, "value": v} for k, v in a.items()], [("metric", "agreement"), ("value", "value")]
        )
        lines += [
            f"Decode to the model's pixels, median ms per photo on one core: 12 MP keras "
            f"{d['decode_ms_12mp'].get('keras')}, fast {d['decode_ms_12mp'].get('fast')}; small photos keras "
            f"{d['decode_ms_small'].get('keras')}, fast {d['decode_ms_small'].get('fast')}.",
            "",
        ]
    return lines
