"""API settings, read from the environment on every access (PEP 562) so tests and processes see current values.

`settings.REDIS_PORT` looks the variable up at call time; nothing here runs at import except building the table.
"""

import os
from typing import Any, Callable

API_DIR = os.path.dirname(os.path.abspath(__file__))

# name -> (type converter, default)
_SPEC: dict[str, tuple[Callable[[str], Any], Any]] = {
    "REDIS_HOST": (str, "localhost"),
    "REDIS_PORT": (int, 6379),
    "REDIS_DB": (int, 0),
    "REDIS_PASSWORD": (str, None),
    "REDIS_SOCKET_TIMEOUT_S": (float, 2.0),
    "UPLOAD_FOLDER": (str, os.path.join(API_DIR, "uploads")),
    "FEEDBACK_FILEPATH": (str, os.path.join(API_DIR, "feedback", "feedback.csv")),
    "UPLOAD_MAX_AGE_S": (float, 24 * 3600.0),  # stored uploads only serve /display; 0 keeps them forever
    "UPLOAD_GC_INTERVAL_S": (float, 60.0),
    "UPLOAD_MAX_BYTES": (int, 1024 ** 3),  # size cap of the upload folder, oldest pruned first; 0: no cap
    "HEARTBEAT_TTL_S": (float, 10.0),
    "MAX_CONTENT_LENGTH": (int, 16 * 1024 * 1024),
    "REQUEST_TIMEOUT_S": (float, 30.0),
    "MAX_QUEUE_DEPTH": (int, 64),
    "RETRY_AFTER_S": (int, 1),
    # Load shedding (README "Load shedding"): /predict requests inside the service at once; 0 = gunicorn's
    # workers x threads. nginx enforces it; the API sheds a request that already waited MAX_QUEUE_WAIT_S.
    "MAX_INFLIGHT": (int, 0),
    "MAX_QUEUE_WAIT_S": (float, 5.0),
    "PER_CLIENT_CONNECTIONS": (int, 256),  # nginx's per-address limit; >= 200 so load tests are never throttled
    "REDIS_MAXMEMORY": (str, "256mb"),    # the Redis `make run` starts (compose sets its own)
    "MAX_IMAGE_PIXELS": (int, 40_000_000),
    "FEEDBACK_MAX_FIELD": (int, 512),
    "SECRET_KEY": (str, None),  # unset: generated once into INSTANCE_PATH/secret_key (secret_key.py)
    "INSTANCE_PATH": (str, None),  # Flask's instance folder; unset: api/instance
    "PROMETHEUS_MULTIPROC_DIR": (str, None),
}


def __getattr__(name: str) -> Any:
    try:
        convert, default = _SPEC[name]
    except KeyError:
        raise AttributeError(f"module 'settings' has no attribute {name!r}") from None
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return convert(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a valid {convert.__name__}") from exc


def __dir__() -> list[str]:
    return sorted(list(_SPEC) + ["API_DIR"])


def max_inflight(gunicorn_workers: int, gunicorn_threads: int) -> int:
    """The admission bound: MAX_INFLIGHT, or one request per gunicorn thread (nothing waits for a thread)."""
    return __getattr__("MAX_INFLIGHT") or gunicorn_workers * gunicorn_threads


def debug() -> bool:
    """Debug only when explicitly asked for: FLASK_DEBUG=1."""
    return os.environ.get("FLASK_DEBUG", "0") == "1"
