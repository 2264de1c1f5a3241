"""Write hardware_report.md and its PNG plots (stress_test/report/) from one results folder.

python -m stress_test.make_report                          # newest results folder
python -m stress_test.make_report --results-dir stress_test/results/20260101T000000Z
"""

from __future__ import annotations

import argparse
from pathlib import Path


from stress_test import report_plots
from stress_test import report_workloads
from stress_test.report_capacity import capacity_section
from stress_test.report_data import Figures, load, per_core, targets
from stress_test.report_compose import compose_section
from stress_test.report_explain import explain_section
from stress_test.report_reading import reading
from stress_test.report_shedding import shedding_section
from stress_test.results import latest_run_dir, read_json, repo_relative

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def md_table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join("–" if r.get(k) is None else str(r[k]) for k, _ in columns) + " |" for r in rows]
    return [head, sep, *body, ""]


def machine_section(f: Figures) -> list[str]:
    m = f.machine
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m.get("flags", {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in sorted(m.get("versions", {}).items()))
    return [
        "## Machine",
        "",
        f"- CPU: {m.get('cpu_model')} ({m.get('vendor')}, family {m.get('family')}), "
        f"{m.get('cores')} cores usable" + (", virtual machine" if m.get("hypervisor") else ""),
        f"- Flags: {flags}",
        f"- Memory: {m.get('memory_gib')} GiB; OS: {m.get('os')}; Python {m.get('python')}",
        f"- Libraries: {versions}",
        f"- fp32 peak (formula): {m.get('peak_formula')}",
        probe_line(m),
        "",
    ]


def probe_line(m: dict) -> str:
    p = m.get("fma_probe")
    if not p:
        return "- Measured FMA peak: not measured (needs gcc)."
    return (
        f"- fp32 peak (measured): {p['gflops_1_core']} GFLOP/s on one core (an effective "
        f"{p['effective_ghz_1_core']} GHz at {p['lanes']} lanes x 2 FMA units), {p['gflops_all_cores']} GFLOP/s on "
        f"all cores — {p['how']}."
    )


def raw_section(f: Figures) -> list[str]:
    b, base = f.bench, f.baseline
    if not b:
        return ["## Raw model benchmark", "", "Not run (no bench.json).", ""]
    lines = [
        "## Raw model benchmark (`make bench`)",
        "",
        f"- Model: {b.get('gflops_per_image')} GFLOP per image, {b.get('gflops_how')}.",
        "- Keras baseline (the original app's way): "
        + (
            f"{base['img_s']} img/s, p50 {base['p50_ms']} ms — {base['method']}; weights {base['weights']}."
            if base
            else "not measured."
        ),
        f"- Each ONNX Runtime worker is a spawned process with its own session; {b['settings'].get('duration')} s "
        f"measured after {b['settings'].get('warmup')} s warm-up; latency is per batch.",
        "",
    ]
    lines += md_table(
        b.get("runs", []),
        [
            ("variant", "variant"),
            ("workers", "workers"),
            ("threads", "threads"),
            ("batch", "batch"),
            ("img_s", "img/s"),
            ("p50_ms", "p50 ms"),
            ("p95_ms", "p95 ms"),
            ("x_baseline", "x Keras"),
            ("peak_pct", "% fp32 peak"),
            ("peak_pct_measured", "% measured peak"),
            ("rss_mb_max", "RSS MB"),
            ("other_load_cores", "other load (cores)"),
        ],
    )
    lines += ["![raw throughput](stress_test/report/raw_throughput.png)", "", "### Per-core scaling", ""]
    lines += md_table(
        per_core(f),
        [
            ("variant", "variant"),
            ("cores", "cores used"),
            ("config", "best config"),
            ("img_s", "img/s"),
            ("img_s_per_core", "img/s per core"),
        ],
    )
    return lines + ["![per-core scaling](stress_test/report/per_core_scaling.png)", ""]


def e2e_section(f: Figures) -> list[str]:
    if not f.matrix:
        return ["## End to end (`make matrix`)", "", "Not run (no matrix.json).", ""]
    s = f.matrix.get("settings", {})
    lines = [
        "## End to end (`make matrix`)",
        "",
        f"Real stack on 127.0.0.1 (redis-server, `python ml_service.py`, gunicorn {s.get('gunicorn_workers')} x "
        f"{s.get('gunicorn_threads')} threads), BATCH_SIZE {s.get('batch_size')}; Locust {s.get('duration')} s per "
        f"user count (closed loop, /predict 20 : page 2 : feedback 1); 503 backpressure counted apart. Saturation: "
        f"closed-loop client for {s.get('saturation_duration')} s; 1-user latency measured exactly for "
        f"{s.get('latency_duration')} s.",
        "",
    ]
    rows = []
    for c in f.e2e():
        for r in c.get("locust", []):
            rows.append({"config": c["config"], **r})
    lines += md_table(
        rows,
        [
            ("config", "config"),
            ("users", "users"),
            ("predict_ok_per_s", "ok/s"),
            ("p50_ms", "p50 ms"),
            ("p95_ms", "p95 ms"),
            ("p99_ms", "p99 ms"),
            ("predict_failures", "failures"),
            ("backpressure_503", "503s"),
        ],
    )
    lines += [
        "![throughput vs users](stress_test/report/e2e_throughput_vs_users.png)",
        "![latency vs users](stress_test/report/e2e_latency_vs_users.png)",
        "",
        "### Saturation, latency, memory, start-up",
        "",
    ]
    lines += md_table(
        f.e2e(),
        [
            ("config", "config"),
            ("sat_ok_per_s", "saturation img/s"),
            ("raw_img_s", "raw ORT same config"),
            ("vs_raw_same", "x raw same"),
            ("vs_raw_best", "x bench best"),
            ("sat_p50_ms", "sat p50 ms"),
            ("lat1_p50_ms", "1-user p50 ms"),
            ("raw_b1_p50_ms", "raw batch-1 p50 ms"),
            ("rss_mb_max", "worker RSS MB"),
            ("ready_s_max", "ready s"),
        ],
    )
    lines += stages_table(f)
    for c in f.failed_configs():
        lines.append(f"- {c['config']} failed: {c['error'][:300]}")
    return lines + [""]


def stages_table(f: Figures) -> list[str]:
    """Mean ms per stage during each saturation run, from the /metrics histograms (absent in older results)."""
    rows = [
        {
            "config": c["config"],
            "sat_ok_per_s": c["sat_ok_per_s"],
            **c["saturation"]["stages_ms"],
            "raw_per_image": (c.get("raw_same_config") or {}).get("per_image_ms"),
        }
        for c in f.e2e()
        if "preprocess_per_image" in (c.get("saturation") or {}).get("stages_ms", {})
    ]
    if not rows:
        return []
    return [
        "### Where the time went during saturation (per stage, from /metrics)",
        "",
        "Means over the saturation run from the difference of the Prometheus histograms scraped right before "
        "and right after it (summed over workers); worker stages are wall time inside one worker.",
        "",
        *md_table(
            rows,
            [
                ("config", "config"),
                ("sat_ok_per_s", "img/s"),
                ("preprocess_per_image", "preprocess ms/img"),
                ("inference_per_image", "inference ms/img"),
                ("raw_per_image", "raw ORT ms/img"),
                ("inference_per_batch", "inference ms/batch"),
                ("mean_batch", "mean batch"),
                ("queue_wait", "queue wait ms"),
                ("api_request", "API /predict ms"),
            ],
        ),
    ]


def int8_section(f: Figures) -> list[str]:
    v = f.card.get("variants", {}).get("int8")
    if not v:
        return ["## INT8", "", "No INT8 model in this run's model card.", ""]
    q, agree, speed = v.get("quantization", {}), v.get("agreement", {}), v.get("speed", {})
    lines = [
        "## INT8",
        "",
        "From the model card (conversion): " + ", ".join(f"{k} {q[k]}" for k in q if k != "calibration_dir"),
        "",
        "| agreement with fp32 | value |",
        "|---|---|",
        *[f"| {k} | {val} |" for k, val in agree.items()],
        "",
        "Speed at conversion: " + ", ".join(f"{k} {val}" for k, val in speed.items()) + ".",
        "",
    ]
    fp, i8 = f.raw_best("fp32"), f.raw_best("int8")
    if fp and i8:
        lines.append(
            f"- Raw ONNX Runtime best: int8 {i8['img_s']} img/s vs fp32 {fp['img_s']} img/s "
            f"({i8['img_s'] / fp['img_s']:.2f}x)."
        )
    fe, ie = f.e2e_best("fp32"), f.e2e_best("int8")
    if fe and ie:
        lines.append(
            f"- End-to-end saturation: int8 {ie['sat_ok_per_s']} img/s ({ie['config']}) vs fp32 "
            f"{fe['sat_ok_per_s']} img/s ({fe['config']}) = {ie['sat_ok_per_s'] / fe['sat_ok_per_s']:.2f}x."
        )
    return lines + [""]


def config_section(folder: Path) -> list[str]:
    cs = read_json(folder / "config_search.json")
    if not cs:
        return []
    lines = ["## Recommended settings (`make config-search`)", ""]
    for goal, r in cs["recommended"].items():
        lines.append(
            f"- For {goal}: `WORKERS={r['workers']} THREADS={r['threads']} BATCH_SIZE={r['batch']}` "
            f"({cs['variant']}: {r['img_s']} img/s, batch p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms)."
        )
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", help="results folder (default: the newest one)")
    p.add_argument("--out", default=str(REPO / "hardware_report.md"), help="markdown file (default hardware_report.md)")
    p.add_argument("--plots", default=str(HERE / "report"), help="folder for the PNGs (default stress_test/report)")
    args = p.parse_args()
    folder = Path(args.results_dir) if args.results_dir else latest_run_dir()
    if folder is None:
        raise SystemExit("no results yet: run `make bench` and `make matrix` first")
    f = load(folder)
    report_plots.all_plots(f, Path(args.plots))
    words = {True: "met", False: "**missed**", None: "not measured"}
    tgt = [{**t, "met": words.get(t["met"], t["met"])} for t in targets(f)]
    shown = folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder
    lines = [
        "# Hardware report",
        "",
        f"Generated by `python -m stress_test.make_report` from `{shown}`. Every figure below comes from that run.",
        "",
    ]
    lines += machine_section(f) + ["## Targets (issue 3)", ""]
    lines += md_table(
        tgt,
        [
            ("target", "target"),
            ("goal", "goal"),
            ("value", "measured"),
            ("met", "result"),
            ("by", "margin"),
            ("basis", "basis"),
        ],
    )
    lines += (
        raw_section(f)
        + config_section(folder)
        + e2e_section(f)
        + compose_section(folder)
        + int8_section(f)
        + ["## Reading", ""]
        + reading(f)
        + [""]
    )
    lines += shedding_section(folder)
    lines += explain_section(folder)
    lines += capacity_section(folder, f)
    lines += report_workloads.section(folder)
    Path(args.out).write_text(repo_relative("\n".join(lines)))
    print(f"wrote {args.out} and plots in {args.plots}")


if __name__ == "__main__":
    main()
