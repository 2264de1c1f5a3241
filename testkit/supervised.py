"""The stack exactly as `make run` starts it: scripts/run.sh (supervisord, Redis, the model service, gunicorn on a
unix socket, nginx on PORT) on free ports with its own run folder."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testkit.processes import free_port, wait_until
from testkit.stack import MODEL_DIR, ROOT, Stack, _get_ok


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
        env.update(
            {
                "RUN_DIR": str(self.run_dir),
                "PORT": str(self.port),
                "HOST": "127.0.0.1",
                "REDIS_PORT": str(self.redis_port),
                "MODEL_DIR": str(MODEL_DIR),
                "INSTANCE_PATH": str(self.tmp / "instance"),
                "UPLOAD_FOLDER": str(self.tmp / "uploads"),
                "FEEDBACK_FILEPATH": str(self.tmp / "feedback" / "feedback.csv"),
                "HEARTBEAT_INTERVAL_S": "0.5",
                "HEARTBEAT_TTL_S": "3",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({k: str(v) for k, v in self.env_overrides.items()})
        return env

    def start(self, n_ready: int = 2, timeout: float = 90) -> SupervisedStack:
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run.sh")],
            env=self.env(),
            start_new_session=True,
            stdout=open(self.tmp / "run.sh.log", "wb"),
            stderr=subprocess.STDOUT,
        )
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
