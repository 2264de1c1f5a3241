"""Run stress_test/locustfile.py headless for one user count and read the figures back from its CSV."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BACKPRESSURE_NAME = "/predict [503 backpressure]"


def run(url: str, users: int, duration_s: int, prefix: Path) -> dict[str, Any]:
    """Locust with `users` users spawned at once for `duration_s`; CSVs at <prefix>_stats.csv etc."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    cmd = [  # `python -m locust` from the repository root: the locustfile imports stress_test.* and testkit.*
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration_s}s",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    with open(f"{prefix}.log", "wb") as log:
        subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=duration_s + 120, check=True)
    return summarize(Path(f"{prefix}_stats.csv"), users)


def _num(row: dict[str, str], key: str) -> float:
    try:
        return float(row.get(key) or 0)
    except ValueError:
        return 0.0


def summarize(stats_csv: Path, users: int) -> dict[str, Any]:
    """/predict throughput (successes only), p50/p95/p99, failures and the 503 backpressure count."""
    rows = {r["Name"]: r for r in csv.DictReader(stats_csv.open())}
    pred = rows.get("/predict", {})
    count, failures = _num(pred, "Request Count"), _num(pred, "Failure Count")
    rps = _num(pred, "Requests/s")
    return {
        "users": users,
        "predict_requests": int(count),
        "predict_failures": int(failures),
        "predict_ok_per_s": round(rps * (count - failures) / count, 3) if count else 0.0,
        "p50_ms": _num(pred, "50%") or None,
        "p95_ms": _num(pred, "95%") or None,
        "p99_ms": _num(pred, "99%") or None,
        "avg_ms": round(_num(pred, "Average Response Time"), 1) or None,
        "backpressure_503": int(_num(rows.get(BACKPRESSURE_NAME, {}), "Request Count")),
        "index_requests": int(_num(rows.get("GET /", {}), "Request Count")),
        "feedback_requests": int(_num(rows.get("/feedback", {}), "Request Count")),
        "feedback_failures": int(_num(rows.get("/feedback", {}), "Failure Count")),
        "all_failures": int(_num(rows.get("Aggregated", {}), "Failure Count")),
    }
