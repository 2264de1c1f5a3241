"""The report's "Per-core scaling in containers" section: compose_matrix.json (1 and 2 model containers at
`cpus: 1` each) beside the process-based matrix (1 and 2 worker processes x 1 thread, fp32, same batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stress_test.results import read_json


def _md(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join("-" if r.get(k) is None else str(r.get(k)) for k, _ in columns) + " |")
    return lines + [""]


def process_rows(matrix: dict[str, Any], batch: int) -> dict[int, dict[str, Any]]:
    """Saturation of the process-based matrix for 1 and 2 single-threaded fp32 workers at this batch size."""
    out = {}
    for c in matrix.get("configs", []):
        if c.get("variant") == "fp32" and c.get("threads") == 1 and c.get("batch") == batch and c.get("sat_ok_per_s"):
            out[c["workers"]] = c
    return out


def compose_section(folder: Path) -> list[str]:
    title = ["## Per-core scaling in containers (`make matrix CONTAINERS=1`)", ""]
    data = read_json(folder / "compose_matrix.json")
    if not data:
        return title + ["Not run (no compose_matrix.json).", ""]
    s = data.get("settings", {})
    runs = data.get("runs", [])
    procs = process_rows(read_json(folder / "matrix.json") or {}, s.get("batch_size", 8))
    one_c = next((r["sat_ok_per_s"] for r in runs if r["models"] == 1 and r.get("sat_ok_per_s")), None)
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
                "ratio": round(r["sat_ok_per_s"] / p["sat_ok_per_s"], 2)
                if r.get("sat_ok_per_s") and p.get("sat_ok_per_s")
                else None,
            }
        )
    lines = title + [
        f"`docker compose up --scale model=N` with `cpus: {s.get('cpus')}` per model container (each runs 1 process x "
        f"1 thread, sized from its CPU quota), BATCH_SIZE {s.get('batch_size')}, fp32, random weights; a closed-loop "
        f"client through the published port for {s.get('duration')} s (saturation) and {s.get('latency_duration')} s "
        "(1 user). Beside it, the process-based matrix above: N worker processes x 1 thread on the same machine.",
        "",
    ]
    lines += _md(
        rows,
        [
            ("n", "model containers / processes"),
            ("c_sat", "containers img/s"),
            ("c_x", "containers x 1"),
            ("c_p50", "containers sat p50 ms"),
            ("c_lat1", "containers 1-user p50 ms"),
            ("p_sat", "processes img/s"),
            ("p_x", "processes x 1"),
            ("p_lat1", "processes 1-user p50 ms"),
            ("ratio", "containers / processes"),
        ],
    )
    for r in runs:
        if r.get("error"):
            lines.append(f"- {r['models']} container(s) failed: {r['error'][:300]}")
    if one_c is None:
        lines.append("- No successful single-container run: no scaling factor.")
    return lines + [""]
