"""Start the real service for a load run (redis-server, `python ml_service.py`, gunicorn) on free loopback ports.

Also measures what the report needs from the workers themselves: time from process start to the heartbeat
saying ready="1", and resident memory (psutil) of every worker process.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

from machine import busy_seconds

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POLL_S = 0.01   # benchmark harness only: how often readiness is sampled (resolution of the ready time)
METRICS_PUSH_S = 0.5   # workers push their metrics this often, so a /metrics scrape is at most this stale


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Service:
    """One configuration of the stack; `env` holds the model settings (WORKERS, THREADS, BATCH_SIZE, ...)."""
    workdir: Path
    env: dict[str, str]
    redis_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        base = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.redis_port), "PORT": str(self.port),
                "SECRET_KEY": "stress-test-only", "UPLOAD_FOLDER": str(self.workdir / "uploads"),
                "FEEDBACK_FILEPATH": str(self.workdir / "feedback" / "feedback.csv"),
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "prometheus"), "PYTHONUNBUFFERED": "1",
                "HEARTBEAT_INTERVAL_S": "0.1", "METRICS_PUSH_INTERVAL_S": str(METRICS_PUSH_S)}
        return {**os.environ, **base, **self.env}

    def _spawn(self, name: str, cmd: list[str], cwd: Path) -> None:
        log = open(self.workdir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(cmd, cwd=cwd, env=self._env(), stdout=log, stderr=subprocess.STDOUT)

    def start(self, timeout: float = 120) -> dict[str, Any]:
        """Start everything, wait for /ready; returns ready times (s) and RSS (MB) per worker process."""
        for sub in ("redis", "uploads", "feedback", "prometheus"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self._spawn("redis", [shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port),
                              "--bind", "127.0.0.1", "--dir", str(self.workdir / "redis"), "--save", "",
                              "--appendonly", "no", "--loglevel", "warning"], self.workdir)
        client = redis.Redis(port=self.redis_port, socket_timeout=1, decode_responses=True)
        self._until(lambda: self._ping(client), 10, "redis-server")
        self.started_at = time.monotonic()
        self._spawn("model", [str(BIN / "python"), "ml_service.py"], REPO / "model")
        self._spawn("api", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"], REPO / "api")
        expected = int(self.env.get("WORKERS", "1"))
        ready_s: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(ready_s) < expected:          # bounded by `timeout`; samples every POLL_S
            for key in client.keys("ml:worker:*"):
                if key not in ready_s and client.hget(key, "ready") == "1":
                    ready_s[key] = round(time.monotonic() - self.started_at, 3)
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ready_s)}/{expected} workers ready after {timeout}s; see {self.workdir}")
            time.sleep(POLL_S)
        self._until(lambda: self._get(self.url + "/ready"), 60, "gunicorn /ready")
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

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) so far of each part and its child processes, plus this (load) process."""
        out = {}
        for name, proc in self.procs.items():
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
        out["other"] = busy_seconds() - sum(out.values())   # everything else on the machine (other jobs)
        return out

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _until(self, check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not up after {timeout}s; logs in {self.workdir}")
            time.sleep(0.05)

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    @staticmethod
    def _get(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        """API first (in-flight requests finish), then the workers, then Redis."""
        for name in ("api", "model", "redis"):
            _stop(self.procs.get(name))
