"""Pinning real processes: every thread moves, and what they start later follows them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stress_test.pinning import cpu_list, pin, this_thread_on, threads_of

# A process with two threads that, once told on stdin, starts a third and prints the cores it may run on.
CHILD = """
import os, sys, threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("up", flush=True)
sys.stdin.readline()
seen = []
later = threading.Thread(target=lambda: seen.append(sorted(os.sched_getaffinity(0))))
later.start(); later.join()
print(",".join(map(str, seen[0])), flush=True)
"""


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    yield proc
    proc.kill()
    proc.wait(10)


# With one core, "pinned to it" is where every thread already is: nothing these tests could catch.
needs_two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two usable cores to show")


def last_core() -> int:
    return max(os.sched_getaffinity(0))


@needs_two_cores
def test_every_thread_is_pinned_and_a_thread_started_later_inherits_it(child):
    core = last_core()
    tids = threads_of(child.pid)
    assert len(tids) >= 2 and all(os.sched_getaffinity(tid) != {core} for tid in tids)  # not there before
    assert pin([child.pid], {core}) == len(tids)
    assert all(os.sched_getaffinity(tid) == {core} for tid in tids)
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == str(core)


def test_a_process_that_ended_is_skipped(child):
    child.kill()
    child.wait(10)  # reaped: its /proc entry is gone
    assert pin([child.pid], {last_core()}) == 0


@needs_two_cores
def test_this_thread_on_places_what_it_starts_and_restores_the_thread():
    before = os.sched_getaffinity(0)
    core = last_core()
    with this_thread_on({core}):
        out = subprocess.run(
            [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == f"[{core}]"
    assert os.sched_getaffinity(0) == before


def test_a_cpu_list_as_taskset_takes_it():
    assert cpu_list({5, 0, 1}) == "0,1,5"
