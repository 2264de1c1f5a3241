"""Worker settings: one frozen dataclass of typed fields with defaults, read from the environment.

`load()` returns one validated snapshot for a worker process; `load(BATCH_SIZE=2)` overrides values (tests pass
them this way, or set environment variables: never by assigning attributes on this module). `settings.NAME` also
works and reads the environment at access time. A value that does not parse fails with the variable's name.
api/settings.py follows the same pattern.
"""

import dataclasses
import os
import socket
import typing
from collections.abc import Mapping
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Settings:
    REDIS_HOST: str = "localhost"
    REDIS_PORT: int = 6379
    REDIS_DB: int = 0
    REDIS_PASSWORD: str | None = None
    REDIS_SENTINELS: str = ""  # "h1:26379,h2:26379": find the master through Sentinel (HOST/PORT ignored)
    REDIS_SENTINEL_MASTER: str = "mymaster"
    REDIS_SENTINEL_PASSWORD: str | None = None
    UPLOAD_FOLDER: str = os.path.join(_HERE, "..", "api", "uploads")
    MODEL_REPOSITORY: str = os.path.join(_HERE, "repository")  # <name>/<version>/ folders (docs/model-repository.md)
    MODEL_NAME: str = "resnet50"
    MODEL_VERSION: str = ""  # empty: the newest version; a number pins that version
    MODEL_POLL_S: float = 5.0  # how often a worker looks for a new version (and at the load/unload policy)
    MODEL_DIR: str = ""  # set: serve exactly this model folder, never switch (tests, benchmarks, a baked image)
    MODEL_FALLBACK_DIR: str = ""  # served while the repository holds no version (compose: the image's own model)
    MODEL_VARIANT: str = ""  # empty: the model card's "serve"
    LABELS_FILE: str = os.path.join(_HERE, "imagenet_class_index.json")
    WORKERS: int = 0  # 0: derived from the cores (session.default_topology)
    THREADS: int = 0  # 0: derived from the cores
    ORT_SPIN: str = "auto"  # auto (off when WORKERS > 1) | 0 | 1
    BATCH_SIZE: int = 8
    BATCH_WAIT_MS: int = 0
    CLAIM_IDLE_MS: int = 5000
    CLAIM_INTERVAL_S: float = 1.0
    MAX_DELIVERIES: int = 3
    RESULT_TTL_S: int = 60
    HEARTBEAT_INTERVAL_S: float = 2.0
    HEARTBEAT_TTL_S: int = 10
    METRICS_PUSH_INTERVAL_S: float = 5.0
    METRICS_PORT: int = 0  # 0: off; else worker i serves on METRICS_PORT + i (+ /healthz, /readyz)
    HEALTH_STALL_S: float = 120.0  # /healthz fails when the worker loop has not come round for this long
    METRICS_ADDR: str = "127.0.0.1"  # where those ports listen: loopback only unless asked (scrape via the API)
    TOP_K: int = 5
    MAX_IMAGE_PIXELS: int = 40_000_000
    CACHE_TTL_S: int = 3600  # response cache: how long an answer is kept (the API's RESPONSE_CACHE=0: off)
    CACHE_MAX_MB: int = 64  # response cache: bytes of answers kept, oldest dropped first
    BATCH_SHARE: int = 1  # 1: take at most ceil(unanswered jobs / live workers) per batch (0: greedy)
    WORKER_NAME: str = ""  # empty: <host>-<pid>-<index>
    LOG_LEVEL: str = "INFO"
    SUMMARY_INTERVAL_S: float = 60.0


class SettingsError(ValueError):
    """A variable that does not parse as its field's type; the message names the variable."""


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _field_types() -> dict[str, tuple[type, bool]]:
    """name → (type, optional), from the resolved annotations (typing.get_type_hints, never annotation strings)."""
    out = {}
    for name, hint in typing.get_type_hints(Settings).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        out[name] = (args[0], True) if args else (hint, False)
    return out


def _parse(name: str, raw: str) -> Any:
    kind, optional = _TYPES[name]
    if raw == "":  # set but empty: None where the field allows it, else the default
        return None if optional else _DEFAULTS[name]
    try:
        if kind is bool:
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")
            return raw.strip().lower() in _TRUE
        return kind(raw)
    except ValueError as exc:
        raise SettingsError(f"environment variable {name}={raw!r} is not a valid {kind.__name__}: {exc}") from None


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """One validated snapshot: explicit overrides > environment (`environ`, default os.environ) > defaults."""
    environ = os.environ if environ is None else environ
    unknown = set(overrides) - set(_TYPES)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values = {name: _parse(name, environ[name]) for name in _TYPES if name in environ and name not in overrides}
    for name, value in overrides.items():
        values[name] = _parse(name, value) if isinstance(value, str) else value
    return Settings(**values)


_TYPES = _field_types()
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}


def __getattr__(name: str) -> Any:  # PEP 562: `settings.NAME` reads the environment at access time
    if name in _TYPES:
        raw = os.environ.get(name)  # only this variable: the request path reads settings many times per request
        return _DEFAULTS[name] if raw is None else _parse(name, raw)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_TYPES))


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
        found.append(
            f"CLAIM_IDLE_MS={cfg.CLAIM_IDLE_MS} is shorter than three lease refresh periods "
            f"({lease_period_s(cfg) * 1000:.0f} ms each): a live worker's batch may be reclaimed by another"
        )
    if cfg.HEARTBEAT_INTERVAL_S <= 0:
        found.append(f"HEARTBEAT_INTERVAL_S={cfg.HEARTBEAT_INTERVAL_S} must be positive")
    elif cfg.HEARTBEAT_INTERVAL_S >= cfg.HEARTBEAT_TTL_S:
        found.append(
            f"HEARTBEAT_INTERVAL_S={cfg.HEARTBEAT_INTERVAL_S} is not below HEARTBEAT_TTL_S="
            f"{cfg.HEARTBEAT_TTL_S}: the API would see live workers as dead between beats"
        )
    return found


def worker_name(cfg: Settings, index: int) -> str:
    """Consumer name in the group: unique per process so a restarted worker never inherits a dead one's name."""
    base = cfg.WORKER_NAME or f"{socket.gethostname()}-{os.getpid()}"
    return f"{base}-{index}"
