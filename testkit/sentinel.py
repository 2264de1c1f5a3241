"""`redis-server --sentinel` on a free loopback port, watching one master (the failover test's three of them)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testkit.processes import free_port, stop_process, wait_until
from testkit.redis_server import redis_server_binary


@dataclass
class SentinelServer:
    """Watches the master on 127.0.0.1:`master_port` as MASTER_NAME, quorum 2, down after `down_after_ms`;
    `master_password`: the data nodes' password (the sentinel itself asks for none)."""

    workdir: Path
    master_port: int
    port: int = field(default_factory=free_port)
    down_after_ms: int = 1000
    proc: subprocess.Popen | None = None
    master_password: str | None = None
    MASTER_NAME = "mymaster"

    def start(self) -> SentinelServer:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "sentinel.conf"  # sentinel rewrites its own config: it must be a writable file
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {self.MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {self.MASTER_NAME} 1\n"
            + (f"sentinel auth-pass {self.MASTER_NAME} {self.master_password}\n" if self.master_password else "")
        )
        self.proc = subprocess.Popen(
            [redis_server_binary(), str(conf), "--sentinel"],
            stdout=open(self.workdir / "sentinel.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, 10, f"sentinel on port {self.port}", 0.02)
        return self

    def _answers(self) -> bool:
        import redis

        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"sentinel on port {self.port} exited with {self.proc.returncode}")
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def master(self) -> dict:
        """This sentinel's view of the master (ip, port, num-slaves, num-other-sentinels, flags…)."""
        return self.client().sentinel_master(self.MASTER_NAME)

    def stop(self) -> None:
        stop_process(self.proc)

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=1)
