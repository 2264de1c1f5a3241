"""Load shedding under overload: 160 closed-loop clients against the stack as `make run` starts it (supervisord,
nginx, default admission bound), unique bytes per request. Prints the p99 latency of the 200s and the shed rate
(503 + Retry-After share); clients wait Retry-After after a 503, as the header asks.

  python -m stress_test.shed_bench                      # 160 clients, 60 s measured, fresh stack; JSON saved
                                                        # beside the newest bench.json (the report reads it)
  python -m stress_test.shed_bench --duration 10 --warmup 3   # short check
  python -m stress_test.shed_bench --url http://127.0.0.1:5000   # against a running `make run` instead
  python -m stress_test.shed_bench --goodput --duration 20   # 8 and 64 clients alternating (8, 64, 64, 8), then
                                                        # 160, on one stack: answered img/s of 8 vs 64 (goodput
                                                        # ratio, each pooled over its windows), p99 of 160

The JSON records the admission bound and Retry-After as deploy/render.py derived them (run folder's admission.json).

Uses the model in MODEL_DIR (default model/artifacts; `make test` leaves one in .run/test-model).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from stress_test import closed_loop
from stress_test.results import run_dir_of_this_machine, write_json


def measure(url: str, clients: int, duration: float, warmup: float) -> dict:
    result = closed_loop.run(url, clients, duration, warmup=warmup, unique=True)
    total = sum(result["statuses"].values())
    shed = result["statuses"].get("503", 0)
    result["shed_rate"] = round(shed / total, 4) if total else None
    result["other_statuses"] = {k: v for k, v in result["statuses"].items() if k not in ("200", "503")}
    return result


def pooled(results: list[dict]) -> dict:
    """Several windows of one load as one: answers over the summed windows, statuses summed, the p50 of the rounds'
    p50s (median) and their worst p99 and max."""
    duration = sum(r["duration_s"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    total, shed = sum(statuses.values()), statuses.get("503", 0)

    def worst(key: str) -> float | None:
        values = [r[key] for r in results if r.get(key) is not None]
        return max(values) if values else None

    p50s = sorted(r["p50_ms"] for r in results if r.get("p50_ms") is not None)
    return {
        "concurrency": results[0]["concurrency"],
        "rounds": len(results),
        "duration_s": round(duration, 2),
        "ok": sum(r["ok"] for r in results),
        "sent": sum(r["sent"] for r in results),
        "ok_per_s": round(sum(r["ok"] for r in results) / duration, 3) if duration else 0.0,
        "statuses": statuses,
        "p50_ms": p50s[len(p50s) // 2] if p50s else None,
        "p99_ms": worst("p99_ms"),
        "max_ms": worst("max_ms"),
        "shed_rate": round(shed / total, 4) if total else None,
        "other_statuses": {k: v for k, v in statuses.items() if k not in ("200", "503")},
    }


def goodput(url: str, duration: float, warmup: float, rounds: int = 2) -> dict:
    """Answered img/s of 8 clients and of 64 honouring Retry-After (goodput under overload: the ratio should stay
    near 1, refusals costing next to nothing), then the p99 of 160; one stack.

    8 and 64 alternate in `rounds` pairs ordered 8, 64, 64, 8, … so a drift in the machine's speed (a shared host's
    clock moves by several per cent within minutes) weighs on both loads alike instead of on whichever ran last."""
    windows: dict[int, list[dict]] = {8: [], 64: []}
    for i in range(rounds):
        for n in (8, 64) if i % 2 == 0 else (64, 8):
            windows[n].append(measure(url, n, duration, warmup))
            r = windows[n][-1]
            print(f"goodput: round {i + 1}, {n:3d} clients: {r['ok_per_s']} answered img/s", flush=True)
    runs = {n: pooled(w) for n, w in windows.items()}
    runs[160] = measure(url, 160, duration, warmup)
    for n, r in runs.items():
        print(
            f"goodput: {n:3d} clients: {r['ok_per_s']} answered img/s, p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms, "
            f"shed rate {r['shed_rate']:.1%}",
            flush=True,
        )
    ratio = round(runs[64]["ok_per_s"] / runs[8]["ok_per_s"], 3) if runs[8]["ok_per_s"] else None
    print(
        f"goodput: 64 vs 8 clients: {ratio} (target >= 0.95); 160 clients: p99 {runs[160]['p99_ms']} ms (target 3000)"
    )
    return {
        "runs": {str(n): r for n, r in runs.items()},
        "rounds": {str(n): w for n, w in windows.items()},
        "ratio_64_vs_8": ratio,
        "p99_160_ms": runs[160]["p99_ms"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=160)
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--url", help="a running stack (default: start one like `make run`, on free ports)")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--goodput", action="store_true", help="8 vs 64 clients, then 160 (see above)")
    p.add_argument("--rounds", type=int, default=2, help="--goodput: pairs of 8- and 64-client windows (default 2)")
    args = p.parse_args()
    stack = None
    url = args.url
    if url is None:
        from testkit.stack import Stack

        stack = Stack(Path(tempfile.mkdtemp(prefix="shed-bench-"))).start()
        url = stack.url
    elif urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("load goes to 127.0.0.1 only")
    try:
        if args.goodput:
            result = {**goodput(url, args.duration, args.warmup, args.rounds), "mode": "goodput"}
        else:
            result = measure(url, args.clients, args.duration, args.warmup)
        if stack is not None:
            result["max_inflight"] = stack.admission_bound
            result["admission"] = json.loads((stack.run_dir / "admission.json").read_text())  # deploy/render.py
    finally:
        if stack is not None:
            stack.stop()
    if args.goodput:
        if not args.no_save:
            print(f"saved {write_json(run_dir_of_this_machine() / 'goodput.json', result)}")
        print(json.dumps(result))
        return
    result["clients"] = args.clients
    print(
        f"{args.clients} clients, {result['duration_s']} s: {result['ok_per_s']} answers/s, "
        f"200 latency p50 {result['p50_ms']} ms p99 {result['p99_ms']} ms max {result['max_ms']} ms; "
        f"shed rate {result['shed_rate']:.1%} (503 + Retry-After); statuses {result['statuses']}"
    )
    if not args.no_save:
        path = write_json(run_dir_of_this_machine() / "shedding.json", result)  # beside bench
        print(f"saved {path}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
