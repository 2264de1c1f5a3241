"""Hardware report section "Load shedding": stress_test/shed_bench.py's shedding.json from the results folder."""

from __future__ import annotations

from pathlib import Path

from stress_test.results import read_json

P99_TARGET_MS = 3000  # issue 8: p99 of the 200s under 160 clients on 2 cores


def shedding_section(folder: Path) -> list[str]:
    data = read_json(folder / "shedding.json")
    if not data:
        return ["## Load shedding", "", "Not measured in this run (`python -m stress_test.shed_bench`).", ""]
    p99 = data.get("p99_ms")
    met = "met" if p99 is not None and p99 <= P99_TARGET_MS else "**missed**"
    return [
        "## Load shedding",
        "",
        f"{data['clients']} closed-loop clients for {data['duration_s']} s against the stack as `make run` starts "
        f"it (admission bound {data.get('max_inflight', '?')} requests, unique bytes per request, clients wait "
        f"`Retry-After` after a 503): {data['ok_per_s']} answers/s; 200 latency p50 {data['p50_ms']} ms, "
        f"p99 {p99} ms (target ≤ {P99_TARGET_MS} ms: {met}), max {data['max_ms']} ms; "
        f"shed rate {data['shed_rate']:.1%}; statuses {data['statuses']}.",
        "",
    ]
