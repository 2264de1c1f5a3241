"""Hardware report section: what class activation heatmaps cost (issue 12), from explain.json (bench_explain.py)."""

from __future__ import annotations

from pathlib import Path

from stress_test.results import read_json

TARGET_EXPLAIN_MS = 1.0  # per image, when asked


def _verdict(row: dict) -> str:
    lo = row["not_asked_delta_ms"] - row["not_asked_ci_ms"]
    hi = row["not_asked_delta_ms"] + row["not_asked_ci_ms"]
    not_asked = "not measurable" if lo <= 0 <= hi else f"{row['not_asked_delta_ms']:+.3f} ms"
    explain = "met" if row["explain_delta_ms"] + row["explain_ci_ms"] <= TARGET_EXPLAIN_MS else "**missed**"
    return f"{not_asked}; explain {explain}"


def explain_section(folder: Path) -> list[str]:
    """Markdown lines; a one-line note when the benchmark was not run for this results folder."""
    data = read_json(folder / "explain.json")
    head = ["## Class activation heatmaps (`stress_test/bench_explain.py`)", ""]
    if not data:
        return head + ["Not run (no explain.json in this results folder).", ""]
    rows = data["rows"]
    lines = head + [
        "The worker's own `Classifier` on real photos, three arms interleaved round by round: the graph without the "
        "`features` output (the model before heatmaps), the served graph with no item asking (probabilities "
        "fetched only), and every item asking (feature map fetched, one 7 x 7 map per image). Differences are "
        f"paired per round: mean ± 95% interval, ms per image of wall time and of the process's CPU time, {rows[0]['threads'] if rows else '?'} intra-op "
        f"thread(s). Targets: explain adds at most {TARGET_EXPLAIN_MS:g} ms per image; not asking costs nothing "
        "measurable.",
        "",
        "| variant | batch | no features ms/img | not asked ms/img | Δ not asked | explain ms/img | Δ explain | "
        "Δ not asked CPU | Δ explain CPU | map alone µs/img | verdict (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = [
            f"{r[k + '_delta_ms']:+.3f} ± {r[k + '_ci_ms']:.3f}" if k + "_delta_ms" in r else "–"
            for k in ("not_asked_cpu", "explain_cpu")
        ]
        lines.append(
            f"| {r['variant']} | {r['batch']} | {r['no_features_ms']} | {r['not_asked_ms']} | "
            f"{r['not_asked_delta_ms']:+.3f} ± {r['not_asked_ci_ms']:.3f} | {r['explain_ms']} | "
            f"{r['explain_delta_ms']:+.3f} ± {r['explain_ci_ms']:.3f} | {cpu[0]} | {cpu[1]} | "
            f"{r['cam_only_us']} | {_verdict(r)} |"
        )
    parity = data.get("card_parity_features") or {}
    if parity:
        lines += [
            "",
            f"Conversion parity of `{parity.get('feature_layer')}` with Keras: max abs diff "
            f"{parity.get('max_abs_diff_features'):.3g} (largest value {parity.get('features_max_abs'):.3g}); "
            f"class maps within {parity.get('max_abs_diff_cam'):.3g} per cell.",
        ]
    return lines + [""]
