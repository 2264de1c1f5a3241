"""The settings pattern both services follow: one frozen dataclass of typed fields with defaults, read from the
environment.

A service's settings.py declares `Settings(SharedSettings)` with its own fields and binds a `SettingsLoader` to it:
`settings.NAME` reads that one variable at access time (PEP 562, so a process or a test's `monkeypatch.setenv` is
seen at once); `settings.load()` returns one validated snapshot and `load(NAME=value)` overrides values (tests pass
them this way or set environment variables, never assign attributes). A value that does not parse raises
SettingsError naming the variable. A set but empty variable means None where the field allows it, else the default.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class SharedSettings:
    """Fields both services read from the same variables, with the same meaning: the Redis they meet in, how long
    a silent worker counts as alive, the model's name, the largest image either decodes, the log level."""

    REDIS_HOST: str = "localhost"
    REDIS_PORT: int = 6379
    REDIS_DB: int = 0
    REDIS_PASSWORD: str | None = None
    REDIS_SOCKET_TIMEOUT_S: float = 2.0  # connect/command timeout (the API's blocking wait adds its request timeout)
    REDIS_SENTINELS: str | None = None  # "h1:26379,h2:26379": find the master through Sentinel (HOST/PORT ignored)
    REDIS_SENTINEL_MASTER: str = "mymaster"
    REDIS_SENTINEL_PASSWORD: str | None = None
    HEARTBEAT_TTL_S: float = 10.0  # a worker silent this long counts as dead
    MODEL_NAME: str = "resnet50"  # the model's folder in the repository; its name in the /v2 and repository routes
    MAX_IMAGE_PIXELS: int = 40_000_000  # larger declared images are refused before any pixel is decoded
    LOG_LEVEL: str = "info"  # any case: gunicorn and Python logging each get the spelling they need


class SettingsError(ValueError):
    """A variable that does not parse as its field's type; the message names the variable."""


class SettingsLoader(Generic[T]):
    """Reads the fields of a frozen settings dataclass from the environment, typed by its resolved annotations."""

    def __init__(self, cls: type[T], module: str) -> None:
        self.cls, self.module = cls, module
        self.types: dict[str, tuple[type, bool]] = {}  # name → (type, optional)
        for name, hint in typing.get_type_hints(cls).items():
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            self.types[name] = (args[0], True) if args else (hint, False)
        self.defaults = {f.name: f.default for f in dataclasses.fields(cls)}

    def parse(self, name: str, raw: str) -> Any:
        """One variable's text → its field's type (SettingsError naming the variable if it does not parse)."""
        kind, optional = self.types[name]
        if raw == "":
            return None if optional else self.defaults[name]
        try:
            if kind is bool:
                if raw.strip().lower() not in _TRUE | _FALSE:
                    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")
                return raw.strip().lower() in _TRUE
            if issubclass(kind, enum.Enum):
                values = [member.value for member in kind]
                if raw not in values:
                    raise ValueError(f"expected one of {values}")
            return kind(raw)
        except ValueError as exc:
            raise SettingsError(f"environment variable {name}={raw!r} is not a valid {kind.__name__}: {exc}") from None

    def load(self, environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
        """One validated snapshot: explicit overrides > environment (`environ`, default os.environ) > defaults."""
        environ = os.environ if environ is None else environ
        unknown = set(overrides) - set(self.types)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = {n: self.parse(n, environ[n]) for n in self.types if n in environ and n not in overrides}
        for name, value in overrides.items():
            values[name] = self.parse(name, value) if isinstance(value, str) else value
        return self.cls(**values)

    def read(self, name: str) -> Any:
        """One setting now. Reads only its own variable: the request path reads settings many times per request."""
        if name not in self.types:
            raise AttributeError(f"module {self.module!r} has no attribute {name!r}")
        raw = os.environ.get(name)
        return self.defaults[name] if raw is None else self.parse(name, raw)

    def module_dir(self, module_globals: dict[str, Any]) -> Callable[[], list[str]]:
        """A module-level `__dir__` that lists the settings beside the module's own names."""
        return lambda: sorted(set(module_globals) | set(self.types))
