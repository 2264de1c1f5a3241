"""testkit/processes.py free_port: a port nothing listens on, never handed out twice, outside the ephemeral range."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys

from testkit import paths, processes


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    low = processes._ephemeral_low()
    ports = [processes.free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)  # the kernel's bind to port 0 may give one port twice; this never does
    assert all(1024 <= p < low for p in ports)  # no outgoing connection takes one as its source port
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))  # free when handed out


def test_a_port_in_use_or_handed_out_before_is_skipped(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy, handed = taken.getsockname()[1], processes.free_port()
        draws = itertools.chain([busy, handed], range(handed + 1, handed + 1000))
        monkeypatch.setattr(processes.random, "randrange", lambda low, high: next(draws))
        got = processes.free_port()
    assert got not in (busy, handed) and got > handed


def test_a_port_another_process_handed_out_is_skipped(monkeypatch):
    """Suites run side by side (make test-unit): a port one test process handed out is not handed out by another,
    though nothing listens on it yet."""
    low = processes._ephemeral_low()
    theirs = next(
        p for p in range(low - 1, low - 1000, -1) if p not in processes._handed_out and processes._bindable(p)
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from testkit import processes; print(processes._lock_port({theirs}), flush=True); input()",
        ],
        cwd=paths.REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        draws = itertools.chain([theirs], range(low - 2000, low))
        monkeypatch.setattr(processes.random, "randrange", lambda low, high: next(draws))
        assert processes.free_port() != theirs
    finally:
        holder.communicate("\n", timeout=10)
    monkeypatch.setattr(processes.random, "randrange", lambda low, high: theirs)
    assert processes.free_port() == theirs  # its lock went with the process
