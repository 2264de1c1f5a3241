"""CPU account through the stack as `make run` serves it: CPU-ms per answered image of supervisord, nginx, gunicorn,
Redis, the model workers (inference and the rest) and this load generator, small photos, closed loop.

  python -m stress_test.cpu_bench                                 # int8, 8 clients, 20 s, 2 workers x 1 thread
  python -m stress_test.cpu_bench --variant fp32 --clients 1
  python -m stress_test.cpu_bench DECODE_CACHE_MB=0 WORKERS=2     # settings for the stack, as KEY=VALUE

An idle window of the same stack comes first (each part's background rate). Per image, CPU time counts where
img/s cannot on a shared machine: with every core busy, inference / (inference + the rest) is the end-to-end
ratio to raw ONNX Runtime that the CPU allows. Uses the model in MODEL_DIR (default model/artifacts).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import psutil

from stress_test import closed_loop, cpu_account, stages
from stress_test.photos import photo_bytes
from testkit.stack import Stack

IDLE_S = 5.0  # benchmark harness only: the idle stack's background CPU (/proc counts 10 ms ticks)
PUSH_S = 0.5  # workers push their metrics this often here, so a /metrics scrape after it is current


def roots(stack: Stack) -> dict[int, str]:
    """pid -> part: supervisord, each program's process group leader, every model worker, this process."""
    out = {stack.proc.pid: "supervisord"}
    for name in ("nginx", "gunicorn", "redis", "model"):
        out[stack.program_pid(name)] = "model_service" if name == "model" else name
    for child in psutil.Process(stack.program_pid("model")).children():
        out[child.pid] = "worker"
    out[psutil.Process().pid] = "load_generator"
    return out


def measure(stack: Stack, clients: int, seconds: float) -> dict:
    parts = roots(stack)
    with cpu_account.CpuWindow(parts) as idle:
        time.sleep(IDLE_S)
    before = stages.scrape(stack.url, settle_s=2 * PUSH_S)
    window = cpu_account.CpuWindow(parts).__enter__()
    run = closed_loop.run(stack.url, clients, seconds, warmup=3, photos=photo_bytes())
    profile = stages.stage_ms(before, stages.scrape(stack.url, settle_s=2 * PUSH_S))
    window.close()
    account = window.account(profile["images"], profile.get("inference_cpu_s"), idle)
    per = account["cpu_ms_per_image"]
    rest = sum(v for k, v in per.items() if k != "inference" and v is not None)
    account["cpu_bound_ratio"] = (
        round(per["inference"] / (per["inference"] + rest), 3) if per.get("inference") else None
    )
    return {"run": run, "stages_ms": profile, "cpu_account": account}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="int8")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("settings", nargs="*", help="KEY=VALUE settings for the stack")
    args = p.parse_args()
    env = {"WORKERS": "2", "THREADS": "1", "BATCH_SIZE": "8", "MODEL_VARIANT": args.variant}
    env.update(dict(s.split("=", 1) for s in args.settings))
    stack = Stack(Path(tempfile.mkdtemp(prefix="cpu-bench-")), env=env).start()
    try:
        result = {"settings": env, "clients": args.clients, **measure(stack, args.clients, args.seconds)}
    finally:
        stack.stop()
    acc, run = result["cpu_account"], result["run"]
    print(f"{args.variant}, {args.clients} clients, {env}: {run['ok_per_s']} img/s, p50 {run['p50_ms']} ms")
    print(cpu_account.format_account(acc))
    print(f"inference / (inference + the rest): {acc['cpu_bound_ratio']} (the end-to-end ratio the CPU allows)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
