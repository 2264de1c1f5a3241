"""cpu_account: /proc parsing, processes grouped under the nearest named ancestor, CPU-ms per answered image."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

import cpu_account
import stages
from cpu_account import CLK_TCK, CpuWindow, cpu_by_part, owner, parse_stat, per_image


def stat_line(pid: int, name: str, ppid: int, utime: int, stime: int) -> str:
    fields = ["S", ppid, pid, pid, 0, -1, 4194304, 100, 0, 0, 0, utime, stime, 0, 0, 20, 0, 1, 0, 12345]
    return f"{pid} ({name}) " + " ".join(str(f) for f in fields)


def test_parse_stat_reads_parent_and_user_plus_system_time_even_with_odd_names():
    assert parse_stat(stat_line(42, "gunicorn: worker [api) x]", 7, 3 * CLK_TCK, CLK_TCK)) == (7, 4.0)


def test_machine_busy_leaves_out_idle_and_iowait():
    text = f"cpu  {CLK_TCK} 0 {CLK_TCK} {100 * CLK_TCK} {5 * CLK_TCK} 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    assert cpu_account.machine_busy_s(text) == 2.0


# 1 init; 10 gunicorn master -> 11, 12 its workers; 20 model service -> 21, 22 workers -> 23 a helper of 21;
# 30 redis; 99 outside the stack
TREE = {1: 0, 10: 1, 11: 10, 12: 10, 20: 1, 21: 20, 22: 20, 23: 21, 30: 1, 99: 1}
ROOTS = {10: "gunicorn", 20: "model_service", 21: "worker", 22: "worker", 30: "redis"}


def snap(cpu: dict[int, float]) -> cpu_account.Snapshot:
    return {pid: (TREE[pid], cpu.get(pid, 0.0)) for pid in TREE}


def test_owner_is_the_nearest_named_ancestor():
    s = snap({})
    assert [owner(p, s, ROOTS) for p in (11, 20, 21, 23, 30, 99)] == [
        "gunicorn",
        "model_service",
        "worker",
        "worker",
        "redis",
        None,
    ]


def test_cpu_by_part_sums_deltas_and_counts_new_processes_from_zero():
    before = snap({10: 1.0, 11: 2.0, 21: 5.0, 22: 5.0, 30: 1.0, 99: 50.0})
    before.pop(23)  # the worker's helper starts inside the window
    after = snap({10: 1.5, 11: 4.0, 12: 1.0, 21: 9.0, 22: 8.0, 23: 0.5, 30: 1.25, 99: 80.0})
    got = cpu_by_part(before, after, ROOTS)
    assert got == pytest.approx({"gunicorn": 3.5, "model_service": 0.0, "worker": 7.5, "redis": 0.25})


def test_per_image_splits_the_worker_into_inference_and_the_rest():
    got = per_image({"gunicorn": 0.5, "worker": 3.0, "redis": 0.1}, answered=100, inference_cpu_s=2.5)
    assert got == pytest.approx({"gunicorn": 5.0, "redis": 1.0, "inference": 25.0, "worker_outside_inference": 5.0})
    assert per_image({"worker": 1.0}, answered=0) == {"worker": None}
    assert per_image({"worker": 1.0}, answered=10) == {"worker": 100.0}  # no counter: not split, not invented


def test_window_sees_the_cpu_a_child_process_burns():
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint('done', flush=True)"
    with CpuWindow({os.getpid(): "load_generator"}) as window:
        subprocess.run([sys.executable, "-c", burn], check=True, capture_output=True)
        proc = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE)
        proc.stdout.readline()  # it has burnt its CPU; still alive (unreaped) when the window closes
        window.close()
    proc.wait(10)
    acc = window.account(answered=10)
    # the first child exited inside the window (not seen); the second, alive at close, counts for its parent's part
    assert acc["cpu_ms_per_image"]["load_generator"] >= 20.0
    assert acc["answered"] == 10 and "not split" in acc["inference_from"]
    assert "load_generator" in cpu_account.format_account(acc)


def test_idle_window_gives_the_background_rate_and_a_net_figure():
    roots = {20: "model_service", 21: "worker", 30: "redis"}
    idle, load = CpuWindow(roots), CpuWindow(roots)
    idle.before, idle.after, idle.t0, idle.t1 = snap({21: 1.0, 30: 1.0}), snap({21: 1.5, 30: 1.2}), 0.0, 5.0
    load.before, load.after, load.t0, load.t1 = snap({21: 2.0, 30: 2.0}), snap({21: 12.0, 30: 2.8}), 0.0, 10.0
    load.busy0, load.busy1 = 0.0, 20.0
    acc = load.account(answered=100, inference_cpu_s=8.0, idle=idle)
    assert acc["idle_cores"] == pytest.approx({"model_service": 0.0, "worker": 0.1, "redis": 0.04})
    # worker 10 s CPU in 10 s, of which 1 s background; redis 0.8 s, of which 0.4 s background
    assert acc["cpu_ms_per_image"] == pytest.approx(
        {"model_service": 0.0, "redis": 8.0, "inference": 80.0, "worker_outside_inference": 20.0}
    )
    assert acc["cpu_ms_per_image_net"] == pytest.approx(
        {"model_service": 0.0, "redis": 4.0, "inference": 80.0, "worker_outside_inference": 10.0}
    )
    assert acc["other_on_machine_cores"] == pytest.approx(0.92)  # 20 busy s - 10.8 s of the stack, over 10 s
    assert "net of idle" in cpu_account.format_account(acc)


def exposition(a: float, b: float) -> str:
    """The text a worker pushes (prometheus_client's own exposition of the counter model/metrics.py keeps)."""
    registry = CollectorRegistry()
    counter = Counter(stages.INFERENCE_CPU, "CPU time during ONNX Runtime runs", ["worker"], registry=registry)
    counter.labels("a").inc(a)
    counter.labels("b").inc(b)
    return generate_latest(registry).decode()


def test_stages_reads_the_inference_cpu_counter_summed_over_workers():
    before, after = stages.parse(exposition(1.0, 2.0)), stages.parse(exposition(3.5, 2.5))
    assert stages.stage_ms(before, after)["inference_cpu_s"] == pytest.approx(3.0)
