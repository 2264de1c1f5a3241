"""Free loopback ports, polling with a deadline, and stopping a child process without leaving it behind."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
# One byte of this file per port: the process that handed a port out holds a lock on its byte until it exits, so
# test processes running side by side (make test-unit) never hand out the same port either.
PORT_LOCKS = os.path.join(tempfile.gettempdir(), "testkit-free-ports.lock")
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()
_port_locks_fd: int | None = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that no test process has handed out before.

    Between this call and the server's bind the port is free for anyone to take. So it is drawn from the ports just
    below the kernel's ephemeral range, which no outgoing connection gets as its source port. And it is never handed
    out twice: a stack asks for its nginx and Redis ports before either binds, and the kernel's own pick (bind to
    port 0) can give the same port to both."""
    low = _ephemeral_low()
    with _handed_out_lock:
        for _ in range(10_000):
            port = random.randrange(max(1024, low - 16_384), low)
            if port in _handed_out or not _bindable(port) or not _lock_port(port):
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port below {low} on 127.0.0.1")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _lock_port(port: int) -> bool:
    """Lock the port's byte of PORT_LOCKS for the life of this process; False when another process holds it. A
    process's record locks go when it exits, or when it closes any descriptor of the file: this one stays open."""
    global _port_locks_fd
    if _port_locks_fd is None:
        _port_locks_fd = os.open(PORT_LOCKS, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(_port_locks_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
    except OSError:
        return False
    return True


@functools.cache
def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default when it cannot be read)."""
    try:
        with open(EPHEMERAL_RANGE, encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 but not listening while the block runs: every connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call check() until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
    """Send `sig`, wait up to `timeout` s, then SIGKILL; returns the exit code (None if there was no process)."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
