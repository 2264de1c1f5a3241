"""The real service on free loopback ports, configured through environment variables like `make run`:
redis-server, `python ml_service.py` worker process(es) and gunicorn. Used by the end-to-end suite and by
the load tools (stress_test/service.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from testkit.paths import PHOTOS, REPO, converted_model_dir
from testkit.processes import free_port, stop_process, wait_until
from testkit.redis_server import RedisServer

MODEL_DIR = converted_model_dir()
ROOT = REPO  # the name tests/stack.py used
__all__ = ["MODEL_DIR", "PHOTOS", "ROOT", "RedisServer", "Stack", "TEST_ENV", "free_port", "post_photo", "wait_until"]

# Short timings so faults are detected within a test's patience; the load tools pass their own `defaults`.
TEST_ENV = {
    "WORKERS": "1",
    "THREADS": "1",
    "BATCH_SIZE": "8",
    "HEARTBEAT_INTERVAL_S": "0.5",
    "HEARTBEAT_TTL_S": "3",
    "METRICS_PUSH_INTERVAL_S": "1",
    "CLAIM_IDLE_MS": "2000",
    "CLAIM_INTERVAL_S": "0.5",
    "REQUEST_TIMEOUT_S": "20",
    "GUNICORN_WORKERS": "2",
    "GUNICORN_THREADS": "16",
    "MAX_QUEUE_DEPTH": "256",
}


@dataclass
class Stack:
    """Redis + worker processes + gunicorn. Environment: os.environ < fixed wiring < `defaults` < `env_overrides`."""

    tmp: Path
    env_overrides: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=lambda: dict(TEST_ENV))
    redis: RedisServer | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    gunicorn: subprocess.Popen | None = None
    port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"  # where gunicorn binds and is reached (a namespace's address in the multi-host test)
    api_prefix: list = field(default_factory=list)  # run gunicorn under this command (e.g. `ip netns exec NS`)

    def __post_init__(self) -> None:
        if self.redis is not None:  # brought by the caller (a Sentinel-watched master, one in a namespace)
            self.redis_port = self.redis.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "REDIS_HOST": self.redis.host if self.redis else "127.0.0.1",
                "REDIS_PORT": str(self.redis_port),
                "PORT": str(self.port),
                "MODEL_DIR": str(MODEL_DIR),
                "SECRET_KEY": "test-only-secret",
                "PYTHONUNBUFFERED": "1",
                "UPLOAD_FOLDER": str(self.tmp / "uploads"),
                "FEEDBACK_FILEPATH": str(self.tmp / "feedback" / "feedback.csv"),
                "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "prometheus"),
            }
        )
        env.update({k: str(v) for k, v in self.defaults.items()})
        env.update({k: str(v) for k, v in self.env_overrides.items()})
        return env

    def start(self, workers: int = 1, wait_workers: bool = True) -> Stack:
        if self.redis is None:
            self.start_redis()
        else:
            for sub in ("uploads", "feedback", "prometheus"):
                (self.tmp / sub).mkdir(parents=True, exist_ok=True)
        for _ in range(workers):
            self.start_worker()
        self.start_gunicorn()
        if wait_workers:
            self.wait_ready(len(self.workers))
        return self

    def start_redis(self) -> RedisServer:
        for sub in ("uploads", "feedback", "prometheus"):
            (self.tmp / sub).mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.tmp / "redis", port=self.redis_port).start()
        return self.redis

    def start_worker(self, prefix: list | None = None, **overrides) -> subprocess.Popen:
        """One `python ml_service.py` (it runs WORKERS worker processes itself); log in worker-<n>.log.
        `prefix`: a command to run it under (`ip netns exec NS`: a worker host of its own)."""
        env = self.env() | {k: str(v) for k, v in overrides.items()}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the API's folder: a worker's files there would join its scrape
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")
        proc = subprocess.Popen(
            [*(prefix or []), sys.executable, "ml_service.py"],
            cwd=REPO / "model",
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def start_gunicorn(self, timeout: float = 30, wait: bool = True) -> None:
        """gunicorn -c gunicorn.conf.py app:app in api/; waits for /health unless `wait` is false."""
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        env = self.env() | ({"HOST": self.host} if self.host != "127.0.0.1" else {})
        self.gunicorn = subprocess.Popen(
            [*self.api_prefix, gunicorn, "-c", "gunicorn.conf.py", "app:app"],
            cwd=REPO / "api",
            env=env,
            stdout=open(self.tmp / "gunicorn.log", "wb"),
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.gunicorn.returncode}:\n{self.logs()}")
            return _get_ok(self.url + "/health")

        if wait:
            wait_until(healthy, timeout, "gunicorn /health")

    def ready_workers(self) -> int:
        import requests

        try:
            body = requests.get(self.url + "/ready", timeout=2).json()
        except (requests.RequestException, ValueError):
            return 0
        return len([w for w in body.get("workers", []) if w.get("ready")])

    def wait_ready(self, n_workers: int = 1, timeout: float = 60) -> None:
        wait_until(lambda: self.ready_workers() >= n_workers, timeout, f"{n_workers} ready worker(s)", 0.2)

    def processes(self) -> dict[str, subprocess.Popen]:
        """name → process: redis, worker-0..n, gunicorn (those started so far)."""
        procs = {"redis": self.redis.proc if self.redis else None, "gunicorn": self.gunicorn}
        procs.update({f"worker-{i}": proc for i, proc in enumerate(self.workers)})
        return {name: proc for name, proc in procs.items() if proc is not None}

    def check_alive(self) -> None:
        """Raise with the log tail of the first part that exited."""
        for name, proc in self.processes().items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.tmp.glob("*.log"))
        )

    def stop(self) -> None:
        """API first (in-flight requests finish), then the workers, then Redis."""
        stop_process(self.gunicorn)
        for proc in self.workers:
            stop_process(proc)
        if self.redis:
            self.redis.stop()


def _get_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def post_photo(url: str, name: str = "cat.jpg", timeout: float = 60, **kwargs):
    """POST one sample photo to <url>/predict; returns the requests.Response."""
    import requests

    with open(PHOTOS / name, "rb") as fh:
        return requests.post(url + "/predict", files={"file": (name, fh, "image/jpeg")}, timeout=timeout, **kwargs)
