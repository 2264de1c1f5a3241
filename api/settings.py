"""API settings: one frozen dataclass of typed fields with defaults, read from the environment.

`settings.REDIS_PORT` reads the environment at access time (PEP 562), so a process or a test's
`monkeypatch.setenv` is seen at once; `load()` returns one validated snapshot and `load(NAME=value)` overrides
values (tests pass them this way or set environment variables, never assign attributes on this module).
A value that does not parse fails with the variable's name. gunicorn.conf.py reads its values here too;
model/settings.py follows the same pattern.
"""

import dataclasses
import os
import typing
from collections.abc import Mapping
from typing import Any

API_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Settings:
    REDIS_HOST: str = "localhost"
    REDIS_PORT: int = 6379
    REDIS_DB: int = 0
    REDIS_PASSWORD: str | None = None
    REDIS_SOCKET_TIMEOUT_S: float = 2.0
    REDIS_SENTINELS: str | None = None  # "h1:26379,h2:26379": find the master through Sentinel (HOST/PORT ignored)
    REDIS_SENTINEL_MASTER: str = "mymaster"
    REDIS_SENTINEL_PASSWORD: str | None = None
    UPLOAD_FOLDER: str = os.path.join(API_DIR, "uploads")
    FEEDBACK_FILEPATH: str = os.path.join(API_DIR, "feedback", "feedback.csv")
    UPLOAD_MAX_AGE_S: float = 24 * 3600.0  # stored uploads only serve /display; 0 keeps them forever
    UPLOAD_GC_INTERVAL_S: float = 60.0
    UPLOAD_MAX_BYTES: int = 1024**3  # size cap of the upload folder, oldest pruned first; 0: no cap
    HEARTBEAT_TTL_S: float = 10.0
    MAX_CONTENT_LENGTH: int = 16 * 1024 * 1024
    REQUEST_TIMEOUT_S: float = 30.0
    MAX_QUEUE_DEPTH: int = 64
    # Load shedding (docs/operations.md, "Load shedding"): /predict requests inside the service at once, and the
    # Retry-After of a 503; 0 = sized by deploy/render.py from the model fleet's measured img/s and
    # SHED_LATENCY_TARGET_S (the API sees render's values through run.sh). nginx enforces the bound; the API sheds a
    # request that already waited MAX_QUEUE_WAIT_S.
    RETRY_AFTER_S: int = 0
    MAX_INFLIGHT: int = 0
    SHED_LATENCY_TARGET_S: float = 2.0
    MAX_QUEUE_WAIT_S: float = 5.0
    PER_CLIENT_CONNECTIONS: int = 256  # nginx's per-address limit; >= 200 so load tests are never throttled
    REDIS_MAXMEMORY: str = "256mb"  # the Redis `make run` starts (compose sets its own)
    MAX_IMAGE_PIXELS: int = 40_000_000
    PREPROCESS: str = "keras"  # keras: bit-identical to Keras load_img; fast: JPEG decoded at a reduced DCT scale
    DECODE_MEMORY_MB: int = 256  # per API process: what concurrent decodes may hold (decode_budget.py)
    DECODE_WAIT_S: float = 5.0  # wait for decode budget before answering 503
    RESPONSE_CACHE: int = 1  # 0: off; 1: identical requests answered from Redis (response_cache.py)
    FEEDBACK_MAX_FIELD: int = 512
    SECRET_KEY: str | None = None  # unset: generated once into INSTANCE_PATH/secret_key (secret_key.py)
    INSTANCE_PATH: str | None = None  # Flask's instance folder; unset: api/instance
    PROMETHEUS_MULTIPROC_DIR: str | None = None
    METRICS_PORT: int = 0  # 0: /metrics on the app's port; else only there, served by the gunicorn master
    METRICS_MERGE_WORKERS: bool = True  # false in a cluster: Prometheus scrapes every worker itself
    DISPLAY_TTL_S: int = 600  # page uploads also kept in Redis this long, so any replica serves /display; 0: off
    DISPLAY_MAX_BYTES: int = 16 * 1024 * 1024  # larger page uploads are kept on local disk only
    # gunicorn (gunicorn.conf.py)
    HOST: str = "0.0.0.0"
    PORT: int = 5000
    GUNICORN_BIND: str | None = None  # e.g. unix:/path.sock behind nginx (make run); wins over HOST:PORT
    GUNICORN_WORKERS: int = 2
    GUNICORN_THREADS: int = 16
    GUNICORN_ACCESSLOG: str | None = "-"  # "-": stdout; set but empty: no access log
    LOG_LEVEL: str = "info"
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"


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


def retry_after_s() -> int:
    """The Retry-After of the API's 503s: RETRY_AFTER_S (`make run` sets the derived one), else 1 second."""
    return __getattr__("RETRY_AFTER_S") or 1


def debug() -> bool:
    """Debug only when explicitly asked for: FLASK_DEBUG=1 (Flask's own variable)."""
    return os.environ.get("FLASK_DEBUG", "0") == "1"
