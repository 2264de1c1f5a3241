"""Start the service for a load run exactly as `make run` serves it (supervisord: Redis, the model service, gunicorn
on a unix socket, nginx in front) on free loopback ports, through testkit's Stack.

This module adds what the report needs from the workers themselves: time from the start to the heartbeat saying
ready="1", resident memory (psutil) of every worker process, and CPU time per part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from stress_test.machine import busy_seconds
from testkit.stack import Stack

FRONT = "nginx"  # recorded in the results: what the load generators reached (the report describes the stack by it)
POLL_S = 0.01  # benchmark harness only: how often readiness is sampled (resolution of the ready time)
METRICS_PUSH_S = 0.5  # workers push their metrics this often, so a /metrics scrape is at most this stale
# Service defaults otherwise: a load run measures the configuration `make run` serves, not the tests' short timings.
LOAD_ENV = {"HEARTBEAT_INTERVAL_S": "0.1", "METRICS_PUSH_INTERVAL_S": str(METRICS_PUSH_S)}


PARTS = {"redis": "redis", "model": "model", "api": "gunicorn", "nginx": "nginx"}  # report's part: the program


@dataclass
class Service:
    """One configuration of the stack; `env` holds the model settings (WORKERS, THREADS, BATCH_SIZE, ...)."""

    workdir: Path
    env: dict[str, str]
    prefix: list[str] = field(default_factory=list)  # a command the stack runs under (testkit's Stack.prefix)
    stack: Stack = field(init=False)
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.stack = Stack(Path(self.workdir), env=LOAD_ENV | self.env, prefix=self.prefix)

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def redis_port(self) -> int:
        return self.stack.redis_port

    def redis_client(self) -> redis.Redis:
        return self.stack.redis_client(socket_timeout=1, decode_responses=True)

    def start(self, timeout: float = 120) -> dict[str, Any]:
        """Start everything, wait for /ready through nginx; returns ready times (s) and RSS (MB) per worker process."""
        self.started_at = time.monotonic()
        self.stack.launch()
        client = self.redis_client()
        expected = self.stack.expected_workers()
        ready_s: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(ready_s) < expected:  # bounded by `timeout`; samples every POLL_S
            for key in _worker_keys(client):
                if key not in ready_s and client.hget(key, "ready") == "1":
                    ready_s[key] = round(time.monotonic() - self.started_at, 3)
            self.stack.check_alive()
            if time.monotonic() > deadline:
                self.stack.stop()
                raise TimeoutError(f"{len(ready_s)}/{expected} workers ready after {timeout}s; see {self.workdir}")
            time.sleep(POLL_S)
        self.stack.wait_started(60)
        return {"ready_s": sorted(ready_s.values()), "rss_mb": self.worker_rss(client)}

    def worker_rss(self, client: redis.Redis | None = None) -> list[float]:
        """RSS in MB of each worker process named by a heartbeat hash (pid field)."""
        client = client or self.redis_client()
        out = []
        for key in client.keys("ml:worker:*"):
            pid = client.hget(key, "pid")
            try:
                out.append(round(psutil.Process(int(pid)).memory_info().rss / 2**20, 1))
            except (TypeError, ValueError, psutil.Error):
                pass
        return sorted(out)

    def parts(self) -> dict[str, set[int]]:
        """The processes under the names the report uses: redis, model (the model service and its workers),
        api (gunicorn) and nginx: each program's whole process group."""
        return {part: self.stack.program_pids(program) for part, program in PARTS.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) so far of each part and its child processes, plus this (load) process."""
        used = self.stack.cpu_seconds(*PARTS.values())
        out = {part: used[program] for part, program in PARTS.items()}
        me = psutil.Process().cpu_times()
        out["load_client"] = me.user + me.system
        out["other"] = busy_seconds() - sum(out.values())  # everything else on the machine (other jobs)
        return out

    def stop(self) -> None:
        """SIGTERM to the stack's process group, as Ctrl-C on `make run`: supervisord stops every program."""
        self.stack.stop()

    def log_files(self) -> list[Path]:
        """run.sh's output and every program's log (supervisord's folder)."""
        work = Path(self.workdir)
        return [*work.glob("*.log"), *(work / "run" / "logs").glob("*.log")]


def _worker_keys(client: redis.Redis) -> list[str]:
    """Heartbeat keys; none while Redis (started by supervisord) is not up yet."""
    try:
        return client.keys("ml:worker:*")
    except redis.RedisError:
        return []
