"""API settings: the fields the API reads from the environment, with their defaults.

The pattern (resnet_common.settings): `settings.REDIS_PORT` reads the environment at access time, so a process or
a test's `monkeypatch.setenv` is seen at once; `load()` returns one validated snapshot and `load(NAME=value)`
overrides values (tests pass them this way or set environment variables, never assign attributes on this module).
A value that does not parse fails with the variable's name. Fields the model workers read too (Redis, heartbeat
TTL, pixel limit, log level) are declared once, in resnet_common.settings.SharedSettings. gunicorn.conf.py reads
its values here too.
"""

import dataclasses
import os

from resnet_common.settings import SettingsError, SettingsLoader, SharedSettings

__all__ = ["Settings", "SettingsError", "load", "retry_after_s", "debug"]

API_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Settings(SharedSettings):
    UPLOAD_FOLDER: str = os.path.join(API_DIR, "uploads")
    FEEDBACK_FILEPATH: str = os.path.join(API_DIR, "feedback", "feedback.csv")
    UPLOAD_MAX_AGE_S: float = 24 * 3600.0  # stored uploads only serve /display; 0 keeps them forever
    UPLOAD_GC_INTERVAL_S: float = 60.0
    UPLOAD_MAX_BYTES: int = 1024**3  # size cap of the upload folder, oldest pruned first; 0: no cap
    MAX_CONTENT_LENGTH: int = 16 * 1024 * 1024
    REQUEST_TIMEOUT_S: float = 30.0
    MAX_QUEUE_DEPTH: int = 64
    # With no worker ready, a request that needs one: 0, a 503 + Retry-After at once (a fixed pool is down);
    # 1, queued, for the first worker to answer (a pool KEDA scales to zero starts on queued jobs).
    SCALE_FROM_ZERO: bool = False
    # Load shedding (docs/operations.md, "Load shedding"): /predict requests inside the service at once, and the
    # Retry-After of a 503; 0 = sized by deploy/render.py from the model fleet's measured img/s and
    # SHED_LATENCY_TARGET_S (the API sees render's values through run.sh). nginx enforces the bound; the API sheds a
    # request that already waited MAX_QUEUE_WAIT_S.
    RETRY_AFTER_S: int = 0
    MAX_INFLIGHT: int = 0
    SHED_LATENCY_TARGET_S: float = 2.0
    MAX_QUEUE_WAIT_S: float = 5.0
    PER_CLIENT_CONNECTIONS: int = 256  # nginx's per-address limit; >= 200 so load tests are never throttled
    PER_CLIENT_INFLIGHT: int = 4  # nginx: POST /predict and POST / inside the service at once per client address
    PER_CLIENT_RATE_PER_S: int = 5  # nginx: POST /, /feedback, /heatmap.png per second per client address
    PER_CLIENT_RATE_BURST: int = 20  # nginx: requests above that rate accepted at once before 429s
    NGINX_METRICS_PORT: int = 9145  # nginx serves its refusal counts on HOST:this port (`make run`)
    REDIS_MAXMEMORY: str = "256mb"  # the Redis `make run` starts (compose sets its own)
    PREPROCESS: str = "keras"  # keras: bit-identical to Keras load_img; fast: JPEG decoded at a reduced DCT scale
    DECODE_MEMORY_MB: int = 256  # per API process: what concurrent decodes may hold (decode_budget.py)
    DECODE_WAIT_S: float = 5.0  # wait for decode budget before answering 503
    DECODE_CACHE_MB: int = 128  # per API process: freed decode memory kept for the next decode (decode_budget.py)
    V2_MAX_BATCH: int = 8  # most images (or tensors) one /v2 infer request may carry; more: 400
    RESPONSE_CACHE: int = 1  # 0: off; 1: identical requests answered from Redis (response_cache.py)
    FEEDBACK_MAX_FIELD: int = 512
    SECRET_KEY: str | None = None  # unset: generated once into INSTANCE_PATH/secret_key (secret_key.py)
    INSTANCE_PATH: str | None = None  # Flask's instance folder; unset: api/instance
    PROMETHEUS_MULTIPROC_DIR: str | None = None
    METRICS_PORT: int = 0  # 0: /metrics on the app's port; else only there, served by the gunicorn master
    METRICS_MERGE_WORKERS: bool = True  # false in a cluster: Prometheus scrapes every worker itself
    ADMIN_TOKEN: str = ""  # set: `Authorization: Bearer <token>` may call the repository routes from anywhere
    DISPLAY_TTL_S: int = 600  # page uploads also kept in Redis this long, so any replica serves /display; 0: off
    DISPLAY_MAX_BYTES: int = 8 * 1024 * 1024  # all display renditions in Redis together; oldest dropped first
    # gunicorn (gunicorn.conf.py)
    HOST: str = "0.0.0.0"
    PORT: int = 5000
    GUNICORN_BIND: str | None = None  # e.g. unix:/path.sock behind nginx (make run); wins over HOST:PORT
    GUNICORN_WORKERS: int = 2
    GUNICORN_THREADS: int = 16
    GUNICORN_ACCESSLOG: str | None = "-"  # "-": stdout; set but empty: no access log
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"


_loader = SettingsLoader(Settings, __name__)
load = _loader.load
__getattr__ = _loader.read  # PEP 562: `settings.NAME` reads the environment at access time
__dir__ = _loader.module_dir(globals())


def retry_after_s() -> int:
    """The Retry-After of the API's 503s: RETRY_AFTER_S (`make run` sets the derived one), else 1 second."""
    return __getattr__("RETRY_AFTER_S") or 1


def debug() -> bool:
    """Debug only when explicitly asked for: FLASK_DEBUG=1 (Flask's own variable)."""
    return os.environ.get("FLASK_DEBUG", "0") == "1"
