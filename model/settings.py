"""Worker configuration from environment variables, read when asked for (never frozen at import).

`load()` returns one immutable snapshot for a worker process; `settings.UPLOAD_FOLDER` and the other
upper-case names also work as module attributes (read from the environment at access time), and a test
may `monkeypatch.setattr(settings, "BATCH_SIZE", 2)`: values set on the module win over the environment.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import sys
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Settings:
    REDIS_HOST: str = "localhost"
    REDIS_PORT: int = 6379
    REDIS_DB: int = 0
    REDIS_PASSWORD: str | None = None
    UPLOAD_FOLDER: str = os.path.join(_HERE, "..", "api", "uploads")
    MODEL_DIR: str = os.path.join(_HERE, "artifacts")
    MODEL_VARIANT: str = ""            # empty: the model card's "serve"
    LABELS_FILE: str = os.path.join(_HERE, "imagenet_class_index.json")
    WORKERS: int = 0                   # 0: derived from the cores (session.default_topology)
    THREADS: int = 0                   # 0: derived from the cores
    ORT_SPIN: str = "auto"             # auto (off when WORKERS > 1) | 0 | 1
    BATCH_SIZE: int = 8
    BATCH_WAIT_MS: int = 0
    CLAIM_IDLE_MS: int = 5000
    CLAIM_INTERVAL_S: float = 1.0
    MAX_DELIVERIES: int = 3
    RESULT_TTL_S: int = 60
    HEARTBEAT_INTERVAL_S: float = 2.0
    HEARTBEAT_TTL_S: int = 10
    METRICS_PUSH_INTERVAL_S: float = 5.0
    METRICS_PORT: int = 0              # 0: off; else worker i serves on METRICS_PORT + i
    METRICS_ADDR: str = "127.0.0.1"    # where those ports listen: loopback only unless asked (scrape via the API)
    TOP_K: int = 5
    MAX_IMAGE_PIXELS: int = 40_000_000
    WORKER_NAME: str = ""              # empty: <host>-<pid>-<index>
    LOG_LEVEL: str = "INFO"
    SUMMARY_INTERVAL_S: float = 60.0


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _convert(name: str, raw: str) -> Any:
    kind = _FIELDS[name].type
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


def load(**overrides: Any) -> Settings:
    """One snapshot: explicit overrides > values set on this module (tests) > environment > defaults."""
    values: dict[str, Any] = {}
    module = sys.modules[__name__].__dict__
    for name in _FIELDS:
        if name in overrides:
            values[name] = overrides[name]
        elif name in module:
            values[name] = module[name]
        elif os.environ.get(name, "") != "":
            try:
                values[name] = _convert(name, os.environ[name])
            except ValueError as exc:
                raise ValueError(f"environment variable {name}={os.environ[name]!r}: {exc}") from None
    return Settings(**values)


LEASE_MIN_PERIOD_S = 0.01  # the lease refresher never runs more often than this


def lease_period_s(cfg: Settings) -> float:
    """How often a worker refreshes the jobs it holds (lease.LeaseKeeper): min(HEARTBEAT_INTERVAL_S,
    CLAIM_IDLE_MS/3), so that a live worker renews each entry at least twice more before claim_stale may take it."""
    return max(LEASE_MIN_PERIOD_S, min(cfg.HEARTBEAT_INTERVAL_S, cfg.CLAIM_IDLE_MS / 3000))


def problems(cfg: Settings) -> list[str]:
    """Timing combinations that break the queue protocol's assumptions; logged as warnings at worker start."""
    found = []
    if cfg.CLAIM_IDLE_MS <= 0:
        found.append(f"CLAIM_IDLE_MS={cfg.CLAIM_IDLE_MS} must be positive: every pending job would count as abandoned")
    elif lease_period_s(cfg) * 1000 * 3 > cfg.CLAIM_IDLE_MS:
        found.append(f"CLAIM_IDLE_MS={cfg.CLAIM_IDLE_MS} is shorter than three lease refresh periods "
                     f"({lease_period_s(cfg) * 1000:.0f} ms each): a live worker's batch may be reclaimed by another")
    if cfg.HEARTBEAT_INTERVAL_S <= 0:
        found.append(f"HEARTBEAT_INTERVAL_S={cfg.HEARTBEAT_INTERVAL_S} must be positive")
    elif cfg.HEARTBEAT_INTERVAL_S >= cfg.HEARTBEAT_TTL_S:
        found.append(f"HEARTBEAT_INTERVAL_S={cfg.HEARTBEAT_INTERVAL_S} is not below HEARTBEAT_TTL_S="
                     f"{cfg.HEARTBEAT_TTL_S}: the API would see live workers as dead between beats")
    return found


def worker_name(cfg: Settings, index: int) -> str:
    """Consumer name in the group: unique per process so a restarted worker never inherits a dead one's name."""
    base = cfg.WORKER_NAME or f"{socket.gethostname()}-{os.getpid()}"
    return f"{base}-{index}"


def __getattr__(name: str) -> Any:  # PEP 562: `settings.UPLOAD_FOLDER` read at access time
    if name in _FIELDS:
        return getattr(load(), name)
    raise AttributeError(f"module 'settings' has no attribute {name!r}")
