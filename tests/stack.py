"""Start and stop the real parts of the service (redis-server, worker processes, gunicorn) on free ports."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "data" / "photos"
MODEL_DIR = Path(os.environ.get("MODEL_DIR", ROOT / "model" / "artifacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.05):
    """Call check() until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


@dataclass
class RedisServer:
    """A throw-away redis-server on a free port, no persistence."""
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.workdir), "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL)
        import redis
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_until(lambda: _ping(client), 10, f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def client(self):
        import redis
        return redis.Redis(port=self.port)


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@dataclass
class Stack:
    """Redis + N worker processes + gunicorn, configured through environment variables like `make run`."""
    tmp: Path
    env_overrides: dict = field(default_factory=dict)
    redis: RedisServer | None = None
    workers: list = field(default_factory=list)
    gunicorn: subprocess.Popen | None = None
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update({
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.redis.port), "PORT": str(self.port),
            "MODEL_DIR": str(MODEL_DIR), "SECRET_KEY": "e2e-test-secret",
            "UPLOAD_FOLDER": str(self.tmp / "uploads"), "FEEDBACK_FILEPATH": str(self.tmp / "feedback" / "feedback.csv"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "prometheus"),
            "WORKERS": "1", "THREADS": "1", "BATCH_SIZE": "8", "HEARTBEAT_INTERVAL_S": "0.5", "HEARTBEAT_TTL_S": "3", "METRICS_PUSH_INTERVAL_S": "1",
            "CLAIM_IDLE_MS": "2000", "CLAIM_INTERVAL_S": "0.5", "REQUEST_TIMEOUT_S": "20",
            "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "16", "MAX_QUEUE_DEPTH": "256", "PYTHONUNBUFFERED": "1",
        })
        env.update({k: str(v) for k, v in self.env_overrides.items()})
        return env

    def start(self, workers: int = 1, wait_workers: bool = True) -> "Stack":
        (self.tmp / "prometheus").mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.tmp / "redis").start()
        for _ in range(workers):
            self.start_worker()
        self.start_gunicorn()
        if wait_workers:
            self.wait_ready(len(self.workers))
        return self

    def start_worker(self, **overrides) -> subprocess.Popen:
        env = self.env() | {k: str(v) for k, v in overrides.items()}
        proc = subprocess.Popen([sys.executable, "ml_service.py"], cwd=ROOT / "model", env=env, start_new_session=True,
                                stdout=open(self.tmp / f"worker-{len(self.workers)}.log", "wb"), stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def start_gunicorn(self) -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.gunicorn = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py", "app:app"], cwd=ROOT / "api",
                                         env=self.env(), stdout=open(self.tmp / "gunicorn.log", "wb"),
                                         stderr=subprocess.STDOUT)
        wait_until(lambda: _get_ok(self.url + "/health"), 30, "gunicorn /health")

    def ready_workers(self) -> int:
        try:
            body = requests.get(self.url + "/ready", timeout=2).json()
        except (requests.RequestException, ValueError):
            return 0
        return len([w for w in body.get("workers", []) if w.get("ready")])

    def wait_ready(self, n_workers: int = 1, timeout: float = 60) -> None:
        wait_until(lambda: self.ready_workers() >= n_workers, timeout, f"{n_workers} ready worker(s)", 0.2)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        _stop(self.gunicorn)
        for proc in self.workers:
            _stop(proc)
        if self.redis:
            self.redis.stop()


def _get_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def post_photo(url: str, name: str = "cat.jpg", timeout: float = 60, **kwargs) -> requests.Response:
    with open(PHOTOS / name, "rb") as fh:
        return requests.post(url + "/predict", files={"file": (name, fh, "image/jpeg")}, timeout=timeout, **kwargs)


@dataclass
class SupervisedStack:
    """The stack exactly as `make run` starts it (scripts/run.sh: supervisord, Redis, model service, gunicorn on a
    unix socket, nginx on PORT), on free ports with its own run folder."""
    tmp: Path
    env_overrides: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def run_dir(self) -> Path:
        return self.tmp / "run"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "MAX_QUEUE_DEPTH", "GUNICORN_THREADS")}
        env.update({
            "RUN_DIR": str(self.run_dir), "PORT": str(self.port), "HOST": "127.0.0.1", "REDIS_PORT": str(self.redis_port),
            "MODEL_DIR": str(MODEL_DIR), "INSTANCE_PATH": str(self.tmp / "instance"),
            "UPLOAD_FOLDER": str(self.tmp / "uploads"), "FEEDBACK_FILEPATH": str(self.tmp / "feedback" / "feedback.csv"),
            "HEARTBEAT_INTERVAL_S": "0.5", "HEARTBEAT_TTL_S": "3", "PYTHONUNBUFFERED": "1",
        })
        env.update({k: str(v) for k, v in self.env_overrides.items()})
        return env

    def start(self, n_ready: int = 2, timeout: float = 90) -> "SupervisedStack":
        self.proc = subprocess.Popen([str(ROOT / "scripts" / "run.sh")], env=self.env(), start_new_session=True,
                                     stdout=open(self.tmp / "run.sh.log", "wb"), stderr=subprocess.STDOUT)
        wait_until(lambda: _get_ok(self.url + "/health"), timeout, "nginx + gunicorn /health")
        self.wait_ready(n_ready, timeout)
        return self

    def ready_workers(self) -> int:
        return Stack.ready_workers(self)  # same /ready reading, through nginx

    def wait_ready(self, n_workers: int = 1, timeout: float = 60) -> None:
        wait_until(lambda: self.ready_workers() >= n_workers, timeout, f"{n_workers} ready worker(s)", 0.2)

    def program_pid(self, name: str) -> int:
        """The pid (= process group) of a supervisord program, as run_program.sh recorded it."""
        return int((self.run_dir / "pgid" / name).read_text())

    def group_members(self, pgid: int) -> list[int]:
        import psutil
        members = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(p.pid) == pgid:
                    members.append(p.pid)
            except (ProcessLookupError, psutil.Error):
                continue
        return members

    def redis_client(self):
        import redis
        return redis.Redis(port=self.redis_port, socket_timeout=2)

    def logs(self) -> str:
        files = [self.tmp / "run.sh.log"] + sorted((self.run_dir / "logs").glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in files if p.exists())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> int | None:
        """Signal run.sh's whole process group, as Ctrl-C or `kill -TERM -PGID` would; returns supervisord's code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)
