"""Worker settings: the fields the model workers read from the environment, with their defaults.

The pattern (resnet_common.settings): `load()` returns one validated snapshot for a worker process; `load(BATCH_SIZE=2)`
overrides values (tests pass them this way, or set environment variables: never by assigning attributes on this
module). `settings.NAME` also works and reads the environment at access time. A value that does not parse fails
with the variable's name. Fields the API reads too (Redis, heartbeat TTL, pixel limit, log level) are declared once,
in resnet_common.settings.SharedSettings.
"""

import dataclasses
import os
import socket

from resnet_common.protocol import DEFAULT_RUNTIME, Runtime
from resnet_common.settings import SettingsError, SettingsLoader, SharedSettings

__all__ = ["Settings", "SettingsError", "load", "lease_period_s", "problems", "worker_name"]

_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Settings(SharedSettings):
    UPLOAD_FOLDER: str = os.path.join(_HERE, "..", "api", "uploads")
    MODEL_REPOSITORY: str = os.path.join(_HERE, "repository")  # <name>/<version>/ folders (docs/model-repository.md)
    MODEL_VERSION: str = ""  # empty: the newest version; a number pins that version
    MODEL_POLL_S: float = 5.0  # how often a worker looks for a new version (and at the load/unload policy)
    MODEL_DIR: str = ""  # set: serve exactly this model folder, never switch (tests, benchmarks, a baked image)
    MODEL_FALLBACK_DIR: str = ""  # served while the repository holds no version (compose: the image's own model)
    MODEL_VARIANT: str = ""  # empty: the model card's "serve"
    LABELS_FILE: str = os.path.join(_HERE, "imagenet_class_index.json")
    WORKERS: int = 0  # 0: derived from the cores (session.default_topology)
    THREADS: int = 0  # 0: derived from the cores
    ORT_SPIN: str = "auto"  # auto (off when WORKERS > 1) | 0 | 1
    ORT_MEM_PATTERN: int = 0  # 1: ONNX Runtime keeps a memory pattern per batch shape (more resident memory)
    RUNTIME: Runtime = DEFAULT_RUNTIME  # onnxruntime | openvino: what runs the ONNX file
    BATCH_SIZE: int = 8
    BATCH_WAIT_MS: int = 0
    CLAIM_IDLE_MS: int = 5000
    CLAIM_INTERVAL_S: float = 1.0
    MAX_DELIVERIES: int = 3
    RESULT_TTL_S: int = 60
    HEARTBEAT_INTERVAL_S: float = 2.0
    METRICS_PUSH_INTERVAL_S: float = 5.0
    METRICS_PORT: int = 0  # 0: off; else worker i serves on METRICS_PORT + i (+ /healthz, /readyz)
    HEALTH_STALL_S: float = 120.0  # loop stalled this long: /healthz fails and the process ends (stall_watchdog)
    METRICS_ADDR: str = "127.0.0.1"  # where those ports listen: loopback only unless asked (scrape via the API)
    CACHE_TTL_S: int = 3600  # response cache: how long an answer is kept (the API's RESPONSE_CACHE=0: off)
    CACHE_MAX_MB: int = 64  # response cache: bytes of answers kept, oldest dropped first
    BATCH_SHARE: int = 1  # 1: take at most ceil(unanswered jobs / live workers) per batch (0: greedy)
    READ_AHEAD: int = 1  # 1: the transaction answering a batch reads the next one (0: answer, then read)
    WORKER_NAME: str = ""  # empty: <host>-<pid>-<index>
    SUMMARY_INTERVAL_S: float = 60.0


_loader = SettingsLoader(Settings, __name__)
load = _loader.load
__getattr__ = _loader.read  # PEP 562: `settings.NAME` reads the environment at access time
__dir__ = _loader.module_dir(globals())


LEASE_MIN_PERIOD_S = 0.01  # the lease refresher never runs more often than this
# The worker loop's bounded exponential back-off between attempts while Redis is unreachable (worker.py).
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0


def lease_period_s(cfg: Settings) -> float:
    """How often a worker refreshes the jobs it holds (lease.LeaseKeeper): min(HEARTBEAT_INTERVAL_S,
    CLAIM_IDLE_MS/3), so that a live worker renews each entry at least twice more before claim_stale may take it."""
    return max(LEASE_MIN_PERIOD_S, min(cfg.HEARTBEAT_INTERVAL_S, cfg.CLAIM_IDLE_MS / 3000))


def read_block_ms(cfg: Settings) -> int:
    """How long the worker's XREADGROUP blocks for new jobs: at most a second, and no longer than CLAIM_INTERVAL_S,
    so that stale jobs are looked for on time."""
    return int(min(1000.0, cfg.CLAIM_INTERVAL_S * 1000))


def redis_timeout_s(cfg: Settings, block_ms: int) -> float:
    """The worker's Redis socket timeout: it outlasts the longest blocking read (BLOCK or the batch wait). A Redis
    that stops answering holds one pass of the worker loop this long, then the loop backs off and comes round."""
    return max(block_ms, cfg.BATCH_WAIT_MS) / 1000 + 5


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
    longest_pass = redis_timeout_s(cfg, read_block_ms(cfg)) + BACKOFF_MAX_S
    if cfg.HEALTH_STALL_S <= longest_pass:
        found.append(
            f"HEALTH_STALL_S={cfg.HEALTH_STALL_S} is not above the {longest_pass:.1f} s one pass of the worker loop may "
            "wait on a Redis that hangs: workers would be ended and replaced during such a hang (stall_watchdog)"
        )
    return found


def worker_name(cfg: Settings, index: int) -> str:
    """Consumer name in the group: unique per process so a restarted worker never inherits a dead one's name."""
    base = cfg.WORKER_NAME or f"{socket.gethostname()}-{os.getpid()}"
    return f"{base}-{index}"
