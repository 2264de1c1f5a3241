"""Start the real service for a load run (redis-server, `python ml_service.py`, gunicorn) on free loopback ports.

The processes are started by the test harness's Stack (testkit/stack.py); this module adds what the report needs
from the workers themselves: time from process start to the heartbeat saying ready="1", resident memory (psutil)
of every worker process, and CPU time per part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

from stress_test.machine import busy_seconds

# testkit, the harness the test suites use; appended so stress_test's own modules keep precedence

from testkit.processes import wait_until
from testkit.stack import Stack

POLL_S = 0.01  # benchmark harness only: how often readiness is sampled (resolution of the ready time)
METRICS_PUSH_S = 0.5  # workers push their metrics this often, so a /metrics scrape is at most this stale
# Service defaults otherwise: a load run measures the configuration `make run` serves, not the tests' short timings.
LOAD_ENV = {"HEARTBEAT_INTERVAL_S": "0.1", "METRICS_PUSH_INTERVAL_S": str(METRICS_PUSH_S)}


@dataclass
class Service:
    """One configuration of the stack; `env` holds the model settings (WORKERS, THREADS, BATCH_SIZE, ...)."""

    workdir: Path
    env: dict[str, str]
    stack: Stack = field(init=False)
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.stack = Stack(Path(self.workdir), env_overrides=self.env, defaults=dict(LOAD_ENV))

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def redis_port(self) -> int:
        return self.stack.redis_port

    def start(self, timeout: float = 120) -> dict[str, Any]:
        """Start everything, wait for /ready; returns ready times (s) and RSS (MB) per worker process."""
        self.stack.start_redis()
        client = redis.Redis(port=self.redis_port, socket_timeout=1, decode_responses=True)
        self.started_at = time.monotonic()
        self.stack.start_worker()  # one ml_service.py; it runs WORKERS processes
        self.stack.start_gunicorn(wait=False)
        expected = int(self.env.get("WORKERS", "1"))
        ready_s: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(ready_s) < expected:  # bounded by `timeout`; samples every POLL_S
            for key in client.keys("ml:worker:*"):
                if key not in ready_s and client.hget(key, "ready") == "1":
                    ready_s[key] = round(time.monotonic() - self.started_at, 3)
            self.stack.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ready_s)}/{expected} workers ready after {timeout}s; see {self.workdir}")
            time.sleep(POLL_S)
        wait_until(lambda: self.stack.check_alive() or _get_ok(self.url + "/ready"), 60, "gunicorn /ready")
        return {"ready_s": sorted(ready_s.values()), "rss_mb": self.worker_rss(client)}

    def worker_rss(self, client: redis.Redis | None = None) -> list[float]:
        """RSS in MB of each worker process named by a heartbeat hash (pid field)."""
        client = client or redis.Redis(port=self.redis_port, socket_timeout=1, decode_responses=True)
        out = []
        for key in client.keys("ml:worker:*"):
            pid = client.hget(key, "pid")
            try:
                out.append(round(psutil.Process(int(pid)).memory_info().rss / 2**20, 1))
            except (TypeError, ValueError, psutil.Error):
                pass
        return sorted(out)

    def parts(self) -> dict[str, Any]:
        """The processes under the names the report uses: redis, model (ml_service.py), api (gunicorn)."""
        procs = {
            "redis": self.stack.redis.proc if self.stack.redis else None,
            "model": self.stack.workers[0] if self.stack.workers else None,
            "api": self.stack.gunicorn,
        }
        return {name: proc for name, proc in procs.items() if proc is not None}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) so far of each part and its child processes, plus this (load) process."""
        out = {}
        for name, proc in self.parts().items():
            try:
                root = psutil.Process(proc.pid)
                tree = [root] + root.children(recursive=True)
            except psutil.Error:
                continue
            total = 0.0
            for p in tree:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            out[name] = total
        me = psutil.Process().cpu_times()
        out["load_client"] = me.user + me.system
        out["other"] = busy_seconds() - sum(out.values())  # everything else on the machine (other jobs)
        return out

    def stop(self) -> None:
        """API first (in-flight requests finish), then the workers, then Redis."""
        self.stack.stop()


def _get_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
