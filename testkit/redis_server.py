"""A throw-away redis-server on a free loopback port, without persistence, that a test may stop and start again."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.processes import free_port, stop_process, wait_until


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server is not on PATH: run `make test` or `make setup` once (they install it)")
    return found


@dataclass
class RedisServer:
    """`args`: extra options (e.g. --replicaof); `prefix`: a command to run it under (`ip netns exec NS`);
    `host`: the address it binds and is reached on; `password`: required of clients (and used towards a master,
    so every node of a replicated set shares it), as `make run` requires of a Redis it is given."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    args: list = field(default_factory=list)
    prefix: list = field(default_factory=list)
    host: str = "127.0.0.1"
    password: str | None = None

    def start(self) -> RedisServer:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                *self.prefix,
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
                *(["--requirepass", self.password, "--masterauth", self.password] if self.password else []),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client(socket_connect_timeout=0.2, socket_timeout=1)
        wait_until(lambda: self._answers(client), 10, f"redis-server on {self.host}:{self.port}", 0.02)
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def client(self, **kwargs: Any):
        """A redis-py client for this server (socket timeout 30 s unless given)."""
        import redis

        return redis.Redis(host=self.host, port=self.port, password=self.password, **{"socket_timeout": 30, **kwargs})

    @contextmanager
    def denied(self, *commands: str) -> Iterator[None]:
        """Redis refuses `commands` to every client of the default user (an ACL, as a locked-down deployment sets)
        until the block ends."""
        client = self.client()
        client.execute_command("ACL", "SETUSER", "default", *(f"-{c}" for c in commands))
        try:
            yield
        finally:
            client.execute_command("ACL", "SETUSER", "default", *(f"+{c}" for c in commands))

    def _answers(self, client) -> bool:
        import redis

        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
