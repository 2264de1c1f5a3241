"""deploy/supervisor/wake.py: one connection as soon as the socket listens; a bounded wait when it never does."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

from testkit import REPO

WAKE = [sys.executable, "-S", str(REPO / "deploy" / "supervisor" / "wake.py")]


def test_connects_once_the_socket_listens(tmp_path):
    path = str(tmp_path / "supervisor.sock")
    accepted: list[bool] = []

    def listen_later() -> None:
        time.sleep(0.3)  # wake.py is already retrying when the socket appears
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path)
            server.listen(1)
            server.settimeout(10)
            conn, _ = server.accept()
            conn.close()
            accepted.append(True)

    listener = threading.Thread(target=listen_later)
    listener.start()
    done = subprocess.run([*WAKE, path, "10"], timeout=20)
    listener.join(15)
    assert done.returncode == 0
    assert accepted == [True]


def test_gives_up_when_nothing_listens(tmp_path):
    stale = tmp_path / "supervisor.sock"
    with socket.socket(socket.AF_UNIX) as dead:  # a socket file nobody listens on, as a killed run leaves it
        dead.bind(str(stale))
    started = time.monotonic()
    done = subprocess.run([*WAKE, str(stale), "0.3"], timeout=20)
    assert done.returncode == 1
    assert time.monotonic() - started < 10
