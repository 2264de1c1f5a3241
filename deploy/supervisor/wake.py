"""Connect once to supervisord's unix socket as soon as it listens, then exit (0; 1 if it never listened in time).

supervisord starts its programs on the first turn of its event loop, and that turn first waits up to a second for
an event on its sockets (supervisor 4's `runforever` polls with a 1 s timeout). A connection is such an event, so
the programs start as soon as supervisord is up instead of a second later. run.sh starts this beside supervisord.

  python -S deploy/supervisor/wake.py RUN_DIR/supervisor.sock [timeout_s]
"""

from __future__ import annotations

import socket
import sys
import time

RETRY_S = 0.01


def wake(path: str, timeout_s: float) -> bool:
    """True once a connection to `path` was accepted by the kernel; False if none was within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(path)
                return True
            except OSError:  # not there yet, or a stale socket file of an earlier run
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(RETRY_S)


if __name__ == "__main__":
    sys.exit(0 if wake(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 30.0) else 1)
