"""Where benchmark and matrix results live: stress_test/results/<UTC timestamp>/, newest last."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]
MANIFEST = "written.json"  # in each results folder: file name -> UTC time write_json last wrote it
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # the times in MANIFEST (UTC)


def repo_relative(value: Any) -> Any:
    """Paths inside the repository written relative to it (also inside longer strings, dicts and lists), so
    committed results carry no path of the machine that produced them."""
    if isinstance(value, dict):
        return {key: repo_relative(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [repo_relative(item) for item in value]
    if isinstance(value, str):
        return value.replace(f"{REPO}/", "")
    return value


def new_run_dir() -> Path:
    """A fresh timestamped folder for one run (bench, matrix and report share it)."""
    path = RESULTS / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dirs(containing: str | None = None) -> list[Path]:
    """The run folders, oldest first, optionally only those that hold the given file."""
    if not RESULTS.is_dir():
        return []
    return sorted(p for p in RESULTS.iterdir() if p.is_dir() and (containing is None or (p / containing).exists()))


def latest_run_dir(containing: str | None = None) -> Path | None:
    """The newest run folder, optionally only among those that hold the given file."""
    runs = run_dirs(containing)
    return runs[-1] if runs else None


# Files that record the machine they ran on (machine.describe()), in the order a folder's machine is looked up.
MACHINE_RECORDS = ("bench.json", "matrix.json", "workloads.json", "peers.json", "compose_matrix.json")
# What makes two machines the same kind for the report: the CPU, its flags and the cores usable.
MACHINE_KIND = ("cpu_model", "vendor", "family", "model", "cores", "flags")


def machine_kind(machine: dict[str, Any] | None) -> tuple | None:
    """The fields of a machine record that decide whether two runs' figures can stand side by side (compared with
    ==: the flags are a dict); None without a record."""
    return tuple(machine.get(key) for key in MACHINE_KIND) if machine else None


def folder_machine(folder: Path) -> dict[str, Any] | None:
    """The machine record of the first file in MACHINE_RECORDS this folder holds that has one."""
    for name in MACHINE_RECORDS:
        machine = (read_json(folder / name) or {}).get("machine")
        if machine:
            return machine
    return None


def bench_run_of_this_machine(machine: dict[str, Any] | None = None) -> Path | None:
    """The newest folder holding a `make bench` run measured on this kind of machine (`machine`:
    stress_test.machine.describe()); None when there is none."""
    if machine is None:
        from stress_test.machine import describe

        machine = describe()
    kind = machine_kind(machine)
    return next((run for run in reversed(run_dirs("bench.json")) if machine_kind(folder_machine(run)) == kind), None)


def run_dir_of_this_machine(machine: dict[str, Any] | None = None) -> Path:
    """Where a benchmark writes: bench_run_of_this_machine(), else a new folder. Never another machine's folder: its
    figures and this machine's would be reported as one run (a checkout carries folders measured elsewhere)."""
    return bench_run_of_this_machine(machine) or new_run_dir()


def write_json(path: Path, data: Any) -> Path:
    """Pretty JSON, small enough to commit, with paths relative to the repository; the time it was written goes
    into its folder's MANIFEST (a checkout does not keep file times, and a folder's files come from several runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(repo_relative(data), indent=2) + "\n")
    if path.name != MANIFEST:
        manifest = path.parent / MANIFEST
        times = read_json(manifest) or {}
        times[path.name] = time.strftime(TIME_FORMAT, time.gmtime())
        manifest.write_text(json.dumps(dict(sorted(times.items())), indent=2) + "\n")
    return path


def written_at(path: Path) -> str | None:
    """The UTC time write_json wrote `path`, from its folder's MANIFEST; None when not recorded."""
    return (read_json(path.parent / MANIFEST) or {}).get(path.name)


def hours_between(a: Path, b: Path) -> float | None:
    """How many hours apart write_json wrote two files (written_at); None when either time is not recorded."""
    first, second = written_at(a), written_at(b)
    if first is None or second is None:
        return None
    return abs(_epoch(second) - _epoch(first)) / 3600


def _epoch(stamp: str) -> int:
    """Seconds since the epoch of a write_json time stamp (UTC)."""
    return calendar.timegm(time.strptime(stamp, TIME_FORMAT))


def read_json(path: Path) -> Any:
    """The JSON at path, or None when the file does not exist."""
    return json.loads(path.read_text()) if path.exists() else None


def format_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain-text table; columns are (key, header), missing values print as '-'."""
    cells = [[h for _, h in columns]] + [["-" if r.get(k) is None else str(r[k]) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def progress_line(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """The newest row as a table line (with the header before the first row), for printing as results arrive."""
    table = format_table(rows, columns)
    return table if len(rows) == 1 else table.splitlines()[-1]
