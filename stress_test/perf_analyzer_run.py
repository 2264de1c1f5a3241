"""`make perf`: Triton's perf_analyzer against the Open Inference Protocol of a running `make run` stack.

BYTES input from an --input-data file of unique files (the sample photos, each copy tagged with a JPEG comment so
its bytes and hash differ while the pixels and the work stay the same: stress_test/unique.py), so the response
cache answers none: each level gets a file of its own, tagged with the run and the level, with more entries than
the level can send (cache hits during the run are read from /metrics and reported, and should be 0). One perf_analyzer run per concurrency level (1, 2, 4, … 64): a level
that perf_analyzer cannot measure (e.g. beyond the admission bound, where it gets 503s) is recorded with its error
and the sweep goes on. Writes perf_analyzer.csv (perf_analyzer's own -f CSV, one row per level) and
perf_analyzer.json (summary) under stress_test/results/<run>/ and prints a table.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import urllib.request
from pathlib import Path

from stress_test.photos import photo_bytes
from stress_test.results import format_table, run_dir_of_this_machine, write_json
from stress_test.unique import unique

MODEL = "resnet50"
LEVELS = (1, 2, 4, 8, 16, 32, 64)
MAX_TRIALS = 5
SERVER_COLUMNS = (
    ("server_queue_ms", "Server Queue"),
    ("server_input_ms", "Server Compute Input"),
    ("server_infer_ms", "Server Compute Infer"),
    ("server_output_ms", "Server Compute Output"),
)
STABILITY_PERCENT = 100  # a shared machine is noisy: accept windows within ±100 % of each other
COLUMNS = [
    ("concurrency", "concurrency"),
    ("throughput", "infer/s"),
    ("p50_ms", "p50 ms"),
    ("p90_ms", "p90 ms"),
    ("p99_ms", "p99 ms"),
    ("cache_hits", "cache hits"),
    ("error", "error"),
]


def data_file(path: Path, count: int, tag: str) -> int:
    """perf_analyzer's JSON input data: `count` unique files, each serialized as a one-element BYTES tensor
    (a uint32 little-endian length, then the bytes: perf_analyzer sends b64 content as the raw tensor). `tag`
    makes them unique across levels and runs: every perf_analyzer process starts again at the first entry."""
    photos = photo_bytes()
    entries = []
    for i in range(count):
        name, data = photos[i % len(photos)]
        item = unique(data, f"perf-analyzer {tag} {i} {name}")
        entries.append({"image": {"b64": base64.b64encode(struct.pack("<I", len(item)) + item).decode()}})
    path.write_text(json.dumps({"data": entries}))
    return count


def metric(url: str, pattern: str) -> float | None:
    """One sample of the service's /metrics (None when it cannot be read; 0 when absent)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    match = re.search(rf"^{pattern} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def cache_hits(url: str) -> float | None:
    return metric(url, r'api_response_cache_total\{result="hit"\}')


def drain(url: str, timeout: float = 120.0) -> None:
    """Wait until the previous level's requests are answered (they hold admission slots after perf_analyzer
    exits): the API's in-flight gauge back to the scrape itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        in_flight = metric(url, "api_requests_in_flight")
        if in_flight is not None and in_flight <= 1:
            return
        time.sleep(0.5)


def window(level: int) -> int:
    """Requests per measurement window at a concurrency (count windows: a bounded number of requests per level,
    at most MAX_TRIALS windows, so the whole sweep stays below the number of unique inputs)."""
    return max(24, 2 * level)


def unique_per_level(level: int) -> int:
    """More distinct inputs than one level sends: perf_analyzer keeps sending between windows, and its threads
    take interleaved entries, so a generous margin over the windows and the requests in flight."""
    return 2 * (MAX_TRIALS + 1) * window(level) + 4 * level


def run_level(binary: str, url: str, data: Path, level: int, csv_path: Path, env: dict) -> dict:
    """One perf_analyzer measurement at one concurrency: its CSV row, or the error it reported."""
    command = [
        binary,
        "-m",
        MODEL,
        "-u",
        url.removeprefix("http://"),
        "-i",
        "http",
        "--input-data",
        str(data),
        "--concurrency-range",
        f"{level}:{level}:1",
        "--measurement-mode",
        "count_windows",
        "--measurement-request-count",
        str(window(level)),
        "--stability-percentage",
        str(STABILITY_PERCENT),
        "--max-trials",
        str(MAX_TRIALS),
        "-f",
        str(csv_path),
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    row: dict = {"concurrency": level, "seconds": round(time.monotonic() - started, 1)}
    if done.returncode != 0 or not csv_path.exists():
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        row["error"] = (lines[-1] if lines else f"exit {done.returncode}")[:200]
        row["shed"] = "admission limit" in row["error"]  # 503s beyond MAX_INFLIGHT: perf_analyzer stops the level
        return row
    with csv_path.open(newline="") as fh:
        measured = list(csv.DictReader(fh))[-1]
    row["csv"] = measured
    row["throughput"] = round(float(measured["Inferences/Second"]), 2)
    for key, column in (("p50_ms", "p50 latency"), ("p90_ms", "p90 latency"), ("p99_ms", "p99 latency")):
        row[key] = round(float(measured[column]) / 1000, 1)
    # The server's side of each request, from the statistics extension (mean µs per request in perf's CSV).
    for key, column in SERVER_COLUMNS:
        if measured.get(column):
            row[key] = round(float(measured[column]) / 1000, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '5000')}")
    parser.add_argument("--perf-analyzer", default=str(Path(sys.executable).parent / "perf_analyzer"))
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrency levels, comma separated")
    args = parser.parse_args(argv)
    host = args.url.split("//")[-1].split(":")[0]
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("load goes to 127.0.0.1 only")
    levels = [int(v) for v in args.levels.split(",")]
    out = run_dir_of_this_machine()  # beside the raw benchmark: one run, one report
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="perf-analyzer-") as tmp:
        run_id = uuid.uuid4().hex[:8]
        hits_before = cache_hits(args.url)
        rows = []
        unique_inputs = 0
        for level in levels:
            data = Path(tmp) / f"input_data_c{level}.json"
            unique_inputs += data_file(data, unique_per_level(level), f"{run_id} c{level}")
            drain(args.url)
            hits = cache_hits(args.url)
            row = run_level(args.perf_analyzer, args.url, data, level, Path(tmp) / f"c{level}.csv", env)
            after = cache_hits(args.url)
            row["cache_hits"] = None if None in (hits, after) else after - hits
            rows.append(row)
            data.unlink()
            print(
                format_table(rows, COLUMNS).splitlines()[-1] if len(rows) > 1 else format_table(rows, COLUMNS),
                flush=True,
            )
        hits_after = cache_hits(args.url)
    measured = [r for r in rows if "csv" in r]
    if measured:
        with (out / "perf_analyzer.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(measured[0]["csv"]))
            writer.writeheader()
            writer.writerows(r["csv"] for r in measured)
    best = max(measured, key=lambda r: r["throughput"], default=None)
    summary = {
        "tool": "perf_analyzer (tritonclient 2.41.0)",
        "model": MODEL,
        "protocol": "HTTP, Open Inference Protocol, BYTES input (binary), batch 1",
        "url": args.url,
        "unique_inputs": unique_inputs,
        "measurement": f"count windows of max(24, 2 x concurrency) requests, at most {MAX_TRIALS} windows, stable within {STABILITY_PERCENT} %",
        "cache_hits_during_run": None if None in (hits_before, hits_after) else hits_after - hits_before,
        "levels": [{k: v for k, v in r.items() if k != "csv"} for r in rows],
        "best": None if best is None else {k: best[k] for k in ("concurrency", "throughput", "p50_ms", "p99_ms")},
    }
    write_json(out / "perf_analyzer.json", summary)
    print()
    print(format_table(rows, COLUMNS))
    print(f"\ncache hits during the run: {summary['cache_hits_during_run']}; results in {out}")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
