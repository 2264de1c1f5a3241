"""Reading one results folder: the figures the hardware report is made of, derived from its summary JSON files
(bench.json, matrix.json, workloads.json, queue_capacity.json, compose_matrix.json, ...).

Everything the report says is computed here or in report_sections.py from measured numbers; nothing is written
in advance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stress_test.results import folder_machine, machine_kind, read_json

ABOVE_FORMULA_PEAK = "not meaningful (measured above the formula peak: nominal clock too low)"
TARGETS = {
    "e2e_vs_raw": 0.90,
    "e2e_vs_keras": 3.0,
    "latency_slack_ms": 10.0,
    "peak_fraction": 0.85,
    "int8_vs_fp32": 1.8,
    "rss_mb": 450.0,
    "ready_s": 3.0,
}


@dataclass
class Figures:
    """The loaded runs plus derived bests; missing parts stay None so the report can say 'not measured'."""

    folder: Path
    bench: dict[str, Any] = field(default_factory=dict)
    matrix: dict[str, Any] = field(default_factory=dict)

    @property
    def machine(self) -> dict[str, Any]:
        return {**(self.matrix.get("machine") or {}), **(self.bench.get("machine") or {})}

    @property
    def card(self) -> dict[str, Any]:
        return self.bench.get("card") or {}

    @property
    def baseline(self) -> dict[str, Any] | None:
        return self.bench.get("baseline")

    def raw(self, variant: str = "fp32") -> list[dict[str, Any]]:
        return [r for r in self.bench.get("runs", []) if r["variant"] == variant]

    def raw_best(self, variant: str = "fp32") -> dict[str, Any] | None:
        rows = self.raw(variant)
        return max(rows, key=lambda r: r["img_s"]) if rows else None

    def raw_batch1(self, threads: int, workers: int = 1, variant: str = "fp32") -> dict[str, Any] | None:
        """The raw run that a single request meets: one batch of 1 on a worker with `threads` threads."""
        rows = [r for r in self.raw(variant) if r["batch"] == 1 and r["threads"] == threads and r["workers"] == workers]
        return rows[0] if rows else None

    def e2e(self, variant: str | None = None) -> list[dict[str, Any]]:
        rows = [c for c in self.matrix.get("configs", []) if "error" not in c]
        return [c for c in rows if variant is None or c["variant"] == variant]

    def e2e_best(self, variant: str = "fp32") -> dict[str, Any] | None:
        rows = [c for c in self.e2e(variant) if c.get("sat_ok_per_s")]
        return max(rows, key=lambda c: c["sat_ok_per_s"]) if rows else None

    def failed_configs(self) -> list[dict[str, Any]]:
        return [c for c in self.matrix.get("configs", []) if "error" in c]


def load(folder: Path) -> Figures:
    return Figures(folder, read_json(folder / "bench.json") or {}, read_json(folder / "matrix.json") or {})


def _target(name: str, value: float | None, goal: float, higher_is_better: bool, unit: str, basis: str) -> dict:
    basis = basis.replace("None", "–")
    if value is None:
        return {"target": name, "goal": goal, "value": None, "met": None, "by": "", "basis": ""}
    met = value >= goal if higher_is_better else value <= goal
    gap = value - goal
    return {
        "target": name,
        "goal": goal,
        "value": round(value, 3),
        "met": met,
        "by": f"{gap:+.3g}{unit} ({100 * gap / goal:+.1f}%)" if goal else f"{gap:+.3g}{unit}",
        "basis": basis,
    }


def targets(f: Figures) -> list[dict[str, Any]]:
    """The service's targets, each with its measured value, met/missed and the margin."""
    return _throughput_targets(f) + [_latency_target(f)] + _peak_targets(f) + _footprint_targets(f)


def _throughput_targets(f: Figures) -> list[dict[str, Any]]:
    """End-to-end saturation against raw ONNX Runtime (best, same configuration) and the Keras baseline."""
    raw, e2e, base = f.raw_best(), f.e2e_best(), f.baseline
    same = e2e.get("vs_raw_same") if e2e else None
    return [
        _target(
            "end-to-end saturation / raw ORT best fp32",
            e2e["sat_ok_per_s"] / raw["img_s"] if e2e and raw else None,
            TARGETS["e2e_vs_raw"],
            True,
            "x",
            f"{e2e and e2e['sat_ok_per_s']} vs {raw and raw['img_s']} img/s",
        ),
        _target(
            "end-to-end saturation / raw ORT of the same configuration",
            same,
            TARGETS["e2e_vs_raw"],
            True,
            "x",
            f"{e2e and e2e['config']}: {e2e and e2e['sat_ok_per_s']} vs {e2e and e2e.get('raw_img_s')} "
            "img/s measured just before the stack started",
        ),
        _target(
            "end-to-end saturation / Keras baseline",
            e2e["sat_ok_per_s"] / base["img_s"] if e2e and base else None,
            TARGETS["e2e_vs_keras"],
            True,
            "x",
            f"{e2e and e2e['sat_ok_per_s']} vs {base and base['img_s']} img/s",
        ),
    ]


def _latency_target(f: Figures) -> dict[str, Any]:
    """The best 1-user p50 over fp32 configurations against raw batch-1 of the same thread count."""
    name = "1-user p50 minus raw batch-1 p50 (ms)"
    lat = [
        (c, c.get("raw_b1_p50_ms") or (f.raw_batch1(c["threads"]) or {}).get("p50_ms"))
        for c in f.e2e("fp32")
        if c.get("lat1_p50_ms")
    ]
    lat = [(c, r) for c, r in lat if r]
    if not lat:
        return _target(name, None, TARGETS["latency_slack_ms"], False, " ms", "")
    c, r = min(lat, key=lambda cr: cr[0]["lat1_p50_ms"] - cr[1])
    basis = f"{c['config']}: {c['lat1_p50_ms']} ms vs raw {r} ms (1 worker, {c['threads']} thread(s))"
    return _target(name, c["lat1_p50_ms"] - r, TARGETS["latency_slack_ms"], False, " ms", basis)


def _peak_targets(f: Figures) -> list[dict[str, Any]]:
    """The best fp32 raw configuration as a fraction of the formula peak and of the measured FMA peak."""
    raw, probe = f.raw_best(), f.machine.get("fma_probe") or {}
    formula = _target(
        "best fp32 raw configuration / fp32 peak (formula)",
        raw["peak_pct"] / 100 if raw and raw.get("peak_pct") else None,
        TARGETS["peak_fraction"],
        True,
        "",
        f"{raw and raw.get('gflop_s')} of {f.machine.get('peak_gflops')} GFLOP/s (nominal clock)",
    )
    if formula["value"] is not None and formula["value"] > 1.0:  # above 100% proves the denominator wrong
        formula.update(met=ABOVE_FORMULA_PEAK, by="")  # the measured-FMA-peak row counts instead
    measured = _target(
        "best fp32 raw configuration / measured FMA peak",
        raw["peak_pct_measured"] / 100 if raw and raw.get("peak_pct_measured") else None,
        TARGETS["peak_fraction"],
        True,
        "",
        f"{raw and raw.get('gflop_s')} of {probe.get('gflops_all_cores')} GFLOP/s (fma_probe.c)",
    )
    return [formula, measured]


def _footprint_targets(f: Figures) -> list[dict[str, Any]]:
    """INT8 speed-up end to end, worker memory and time to ready."""
    i8, e2e = f.e2e_best("int8"), f.e2e_best()
    rss = [c["rss_mb_max"] for c in f.e2e() if c.get("rss_mb_max")]
    ready = [c["ready_s_max"] for c in f.e2e() if c.get("ready_s_max")]
    return [
        _target(
            "INT8 / fp32 end-to-end saturation",
            i8["sat_ok_per_s"] / e2e["sat_ok_per_s"] if i8 and e2e else None,
            TARGETS["int8_vs_fp32"],
            True,
            "x",
            f"{i8 and i8['sat_ok_per_s']} vs {e2e and e2e['sat_ok_per_s']} img/s",
        ),
        _target(
            "worker RSS (MB, max over configurations)",
            max(rss) if rss else None,
            TARGETS["rss_mb"],
            False,
            " MB",
            "psutil RSS of each worker after warm-up and after load",
        ),
        _target(
            "worker ready after start (s, max)",
            max(ready) if ready else None,
            TARGETS["ready_s"],
            False,
            " s",
            'process start to heartbeat ready="1" (sampled every 0.1 s)',
        ),
    ]


def per_core(f: Figures) -> list[dict[str, Any]]:
    """Best raw img/s for each number of cores used (workers x threads), and per core."""
    out = []
    for variant in ("fp32", "int8"):
        by_cores: dict[int, dict] = {}
        for r in f.raw(variant):
            n = r["workers"] * r["threads"]
            if n not in by_cores or r["img_s"] > by_cores[n]["img_s"]:
                by_cores[n] = r
        for n, r in sorted(by_cores.items()):
            out.append(
                {
                    "variant": variant,
                    "cores": n,
                    "img_s": r["img_s"],
                    "img_s_per_core": round(r["img_s"] / n, 2),
                    "config": f"{r['workers']}x{r['threads']} b{r['batch']}",
                }
            )
    return out


# (target, run name, how the value is computed, goal, "min" | "max"): every run is 2 workers x 1 thread through
# nginx, against raw ONNX Runtime of the same configuration measured just before its stack started
GOALS = [
    ("small photos fp32 / raw (2x1, 8 clients)", "small-fp32-keras-c8", "vs_raw", 0.90, "min"),
    ("small photos INT8 / raw INT8 (2x1, 8 clients)", "small-int8-keras-c8", "vs_raw", 0.80, "min"),
    ("1-client p50 minus raw batch-1 p50, small photos (ms)", "small-fp32-keras-c1", "lone_gap", 5.0, "max"),
    ("12 MP photos, PREPROCESS=fast / raw (2x1, 8 clients)", "12mp-fp32-fast-c8", "vs_raw", 0.65, "min"),
    ("12 MP photos, exact (keras) mode / raw (2x1, 8 clients)", "12mp-fp32-keras-c8", "vs_raw", 0.45, "min"),
    ("Redis traffic per request (KiB, in + out, worst 8-client run)", None, "redis", 320.0, "max"),
]
RESULT_WORDS = {True: "met", False: "**missed**", None: "not measured"}


def judge(value: float | None, goal: float, higher_is_better: bool, unit: str = "") -> tuple[str, str]:
    """("met" | "**missed**" | "not measured", margin as value - goal with its share of the goal)."""
    t = _target("", value, goal, higher_is_better, unit, "")
    return RESULT_WORDS[t["met"]], t["by"]


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


def workload_targets(runs: list[dict]) -> list[dict[str, Any]]:
    """The workload targets (small and 12 MP photos) with their measured values from workloads.json's runs, each
    met or missed and by how much (value - goal)."""
    by_name = {r["name"]: r for r in runs if "error" not in r}
    rows = []
    for target, name, kind, goal, sense in GOALS:
        run = by_name.get(name) if name else None
        value = _value(kind, run, list(by_name.values()))
        result, margin = judge(value, goal, sense == "min", " ms" if kind == "lone_gap" else "")
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
                "result": result,
                "by": margin or None,
                "basis": basis,
                "load_client_share": run.get("load_client_share") if run else None,
            }
        )
    return rows


# Where a 1-client run's p50 beyond raw batch 1 went, each part from the run's own figures (stages_ms: means from
# /metrics); the parts add up to the gap by construction (to rounding), the last two being what the stages leave of
# the API's time and of the client's. (key, label)
LONE_PARTS = [
    ("inference", "inference beyond raw b1"),
    ("api_decode", "API decode"),
    ("queue_wait", "queue wait"),
    ("normalise", "worker normalise"),
    ("api_other", "API other"),
    ("outside_api", "outside the API"),
]


def lone_request_parts(run: dict) -> dict[str, float] | None:
    """A 1-client run's gap (p50 - raw batch-1 p50) split into LONE_PARTS, in ms; None without the figures.

    inference: the workers' mean inference minus raw's batch-1 p50; API other: the API's mean /predict time minus
    decode, queue wait, normalise and inference (form parsing, the Redis round trips, the answer); outside the API:
    the client's p50 minus the API's mean (nginx, gunicorn's HTTP, the load generator)."""
    stages = run.get("stages_ms") or {}
    names = ("api_decode_per_image", "queue_wait", "preprocess_per_image", "inference_per_image", "api_request")
    if run.get("clients") != 1 or any(stages.get(n) is None for n in names) or run.get("raw_b1_p50_ms") is None:
        return None
    decode, wait, normalise, inference, api = (stages[n] for n in names)
    parts = {
        "inference": inference - run["raw_b1_p50_ms"],
        "api_decode": decode,
        "queue_wait": wait,
        "normalise": normalise,
        "api_other": api - decode - wait - normalise - inference,
        "outside_api": run["p50_ms"] - api,
    }
    return {"gap": round(run["p50_ms"] - run["raw_b1_p50_ms"], 2)} | {k: round(v, 2) for k, v in parts.items()}


REDIS_HEADROOM = 0.5  # plan Redis at half a core: failover catch-up, replication and bursts need the rest
GROWTH = (1, 10, 1000)


def best_per_core(f: Figures) -> dict[str, float]:
    """Best raw images/s per core for each variant (fp32, int8) in this run's bench."""
    out: dict[str, float] = {}
    for row in per_core(f):
        out[row["variant"]] = max(out.get(row["variant"], 0.0), row["img_s_per_core"])
    return out


def plan(queue: dict[str, Any], rates: dict[str, float], today_img_s: float) -> list[dict[str, Any]]:
    """Rows per (growth, variant): jobs/s, worker cores, Redis shards, network through each shard."""
    best = queue["best"]
    per_redis = best["jobs_s_per_redis_core"] * REDIS_HEADROOM
    payload = best["payload_bytes"]
    rows = []
    for growth in GROWTH:
        need = today_img_s * growth
        shards = max(1, math.ceil(need / per_redis))
        for variant, rate in sorted(rates.items()):
            rows.append(
                {
                    "load": f"{growth}x",
                    "img_s": round(need, 1),
                    "variant": variant,
                    "worker_cores": math.ceil(need / rate),
                    "redis_shards": shards,
                    "gbit_s_per_shard": round(need / shards * payload * 2 * 8 / 1e9, 2),
                }
            )
    return rows


def process_rows(matrix: dict[str, Any], batch: int) -> dict[int, dict[str, Any]]:
    """Saturation of the process-based matrix for 1 and 2 single-threaded fp32 workers at this batch size."""
    out = {}
    for c in matrix.get("configs", []):
        if c.get("variant") == "fp32" and c.get("threads") == 1 and c.get("batch") == batch and c.get("sat_ok_per_s"):
            out[c["workers"]] = c
    return out


def compose_rows(runs: list[dict[str, Any]], procs: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model-container count: containers beside the same number of worker processes."""
    one_p = procs.get(1, {}).get("sat_ok_per_s")
    rows = []
    for r in runs:
        p = procs.get(r["models"], {})
        rows.append(
            {
                "n": r["models"],
                "c_sat": r.get("sat_ok_per_s"),
                "c_x": r.get("x_one"),
                "c_p50": r.get("sat_p50_ms"),
                "c_lat1": r.get("lat1_p50_ms"),
                "p_sat": p.get("sat_ok_per_s"),
                "p_x": round(p["sat_ok_per_s"] / one_p, 2) if p.get("sat_ok_per_s") and one_p else None,
                "p_lat1": p.get("lat1_p50_ms"),
                "c_raw": r.get("vs_raw_same"),  # over raw ONNX Runtime of as many processes, right before each
                "p_raw": p.get("vs_raw_same"),
                "ratio": round(r["sat_ok_per_s"] / p["sat_ok_per_s"], 2)
                if r.get("sat_ok_per_s") and p.get("sat_ok_per_s")
                else None,
            }
        )
    return rows


# cpu_account parts shown as columns, in the order a request meets them; the rest (supervisord, the model
# service's parent process) goes into one "other" column
CPU_PARTS = ["nginx", "gunicorn", "redis", "worker_outside_inference", "inference", "load_generator"]


def cpu_account_rows(runs: list[dict]) -> list[dict[str, Any]]:
    """Per workloads.json run with a CPU account: CPU-ms per answered image of each part, and inference's share of
    all of it (load generator included: it takes the same cores), which bounds end-to-end / raw on a shared box."""
    rows = []
    for r in runs:
        acc = r.get("cpu_account")
        if not acc:
            continue
        per = {k: v for k, v in acc["cpu_ms_per_image"].items() if v is not None}
        total = sum(per.values())
        inference = per.get("inference")
        rows.append(
            {
                "name": r["name"],
                "ok_per_s": r.get("ok_per_s"),
                **{k: per.get(k) for k in CPU_PARTS},
                "other": round(sum(v for k, v in per.items() if k not in CPU_PARTS and k != "worker"), 2),
                "worker_unsplit": per.get("worker"),
                "total": round(total, 2),
                "cpu_bound": round(inference / total, 3) if inference and total else None,
                "vs_raw": r.get("vs_raw"),
                "other_on_machine_cores": acc.get("other_on_machine_cores"),
            }
        )
    return rows


def openvino_rows(bench: dict[str, Any]) -> list[dict[str, Any]]:
    """bench.json's OpenVINO rows beside ONNX Runtime's row of the same variant, workers, threads and batch."""
    ort = {(r["variant"], r["workers"], r["threads"], r["batch"]): r for r in bench.get("runs", [])}
    rows = []
    for r in bench.get("openvino") or []:
        base = ort.get((r["variant"], r["workers"], r["threads"], r["batch"])) or {}
        x = r.get("x_onnxruntime")
        if x is None and base.get("img_s"):
            x = round(r["img_s"] / base["img_s"], 2)
        rows.append(
            {
                "variant": r["variant"],
                "config": f"{r['workers']}x{r['threads']} b{r['batch']}",
                "ort_img_s": base.get("img_s"),
                "ov_img_s": r["img_s"],
                "x_onnxruntime": x,
                "ort_p50_ms": base.get("p50_ms"),
                "ov_p50_ms": r.get("p50_ms"),
                "ort_rate": base.get("img_s") or 0.0,
            }
        )
    return rows


def openvino_at_ort_best(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant, the OpenVINO row at ONNX Runtime's fastest configuration (the one a worker would run)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["x_onnxruntime"] is None:
            continue
        if r["variant"] not in out or r["ort_rate"] > out[r["variant"]]["ort_rate"]:
            out[r["variant"]] = r
    return out


def machine_rate(run: dict[str, Any]) -> float | None:
    """How fast the machine ran during a workloads stack: ONNX Runtime's raw rate, the mean of the rates measured
    before and after the stack (before only, in older results); None without either."""
    before, after = run.get("raw_onnxruntime_img_s"), run.get("raw_onnxruntime_after_img_s")
    return (before + after) / 2 if before and after else before or None


def openvino_end_to_end(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each workloads.json run made with RUNTIME=openvino beside the same run with ONNX Runtime (its name without
    the settings suffix): answered img/s and p50 of both, and OpenVINO's img/s and p50 over ONNX Runtime's
    corrected for the machine's drift between the two stacks, the ratio of their machine_rate; runs without that
    reference (older results) are left out: minutes apart on a shared machine, their figures do not compare."""
    by_name = {r["name"]: r for r in runs if "error" not in r}
    rows = []
    for name, ov in by_name.items():
        base = by_name.get(name.removesuffix("-runtimeopenvino")) if ov.get("runtime") == "openvino" else None
        if base is None or base is ov or not (machine_rate(ov) and machine_rate(base)):
            continue
        drift = machine_rate(ov) / machine_rate(base)
        rows.append(
            {
                "run": base["name"],
                "variant": ov.get("variant", "fp32"),
                "clients": ov["clients"],
                "ort_img_s": base["ok_per_s"],
                "ov_img_s": ov["ok_per_s"],
                "ort_p50_ms": base["p50_ms"],
                "ov_p50_ms": ov["p50_ms"],
                "drift": round(drift, 3),
                "x_onnxruntime": round(ov["ok_per_s"] / base["ok_per_s"] / drift, 3) if base["ok_per_s"] else None,
                "p50_x_onnxruntime": round(ov["p50_ms"] * drift / base["p50_ms"], 3),
            }
        )
    return rows


NOISE_MARGIN = 0.03  # two runs closer than this (img/s, p50, ratios to raw) are run-to-run noise: level


def raw_moves(runs: list[dict[str, Any]]) -> list[float]:
    """How much ONNX Runtime's raw rate changed between the start and the end of each stack (workloads.run_stack
    measures it at both; older results have no end), as fractions."""
    return [
        abs(r["raw_onnxruntime_after_img_s"] / r["raw_onnxruntime_img_s"] - 1)
        for r in runs
        if r.get("raw_onnxruntime_after_img_s") and r.get("raw_onnxruntime_img_s")
    ]


def run_noise(runs: list[dict[str, Any]]) -> float:
    """How far a workloads run's figures move by themselves: the largest of raw_moves, NOISE_MARGIN at least. Two
    stacks' figures closer than this are level, whatever a drift correction or a ratio to raw makes of them."""
    return round(max([NOISE_MARGIN, *raw_moves(runs)]), 3)


def noise_basis(margin: float) -> str:
    """What a verdict's margin is, for the report."""
    if margin > NOISE_MARGIN:
        return f"{margin:.0%}, the most ONNX Runtime's raw rate moved between the start and the end of one stack"
    return f"{margin:.0%}"


def openvino_judgement(row: dict[str, Any], margin: float = NOISE_MARGIN) -> str:
    """An openvino_end_to_end row: "better" (more img/s or a lower p50 by more than `margin`, and neither worse
    by more), "worse", or "level"."""
    x, p50 = row["x_onnxruntime"] or 0.0, row["p50_x_onnxruntime"]
    if x < 1 - margin or p50 > 1 + margin:
        return "worse"
    if x > 1 + margin or p50 < 1 - margin:
        return "better"
    return "level"


def amdahl(raw_gain: float, share: float) -> float:
    """End-to-end speed-up when only `share` of the CPU per image (inference) gets `raw_gain` times faster."""
    return 1.0 / ((1.0 - share) + share / raw_gain)


# Files a section takes from another results folder when this one has none: each is one tool's run on its own
# (`make bench-peers`, `make perf` or `make bench-split` before any `make bench` writes a folder of its own).
# Every other file is read from the report's folder only.
BORROWABLE = ("peers.json", "bench_v2.json", "perf_analyzer.json", "split_cores.json")


def find_path(folder: Path, name: str) -> Path | None:
    """Where the report reads `name` from: this results folder's file; for a BORROWABLE file it lacks, the newest
    sibling folder's that was measured on the same kind of machine (its own record, else its folder's). None when
    there is none: a file of another machine, or of an unknown one, is never shown as this machine's."""
    own = folder / name
    if own.exists():
        return own
    if name not in BORROWABLE or not folder.parent.is_dir():
        return None
    kind = machine_kind(folder_machine(folder))
    if kind is None:
        return None
    for path in sorted((p / name for p in folder.parent.iterdir() if p.is_dir() and p != folder), reverse=True):
        if path.exists():
            machine = (read_json(path) or {}).get("machine") or folder_machine(path.parent)
            if machine_kind(machine) == kind:
                return path
    return None


def find_json(folder: Path, name: str) -> tuple[Path, dict[str, Any]] | None:
    """(path, data) of find_path's file, or None."""
    path = find_path(folder, name)
    return None if path is None else (path, read_json(path))
