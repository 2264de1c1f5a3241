"""The services' own modules, imported the way each service imports them, so a benchmark measures the code it runs.

model/ and api/ are run from their folders with flat imports (`import settings`), not installed as packages, and
both have a `settings` module: a benchmark process (or a child it spawns) imports from one service only, with that
service's folder first on its import path. This is the one place in stress_test/ that touches the import path.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from stress_test.artifacts import REPO

SERVICES = ("model", "api")


def service_module(service: str, name: str) -> ModuleType:
    """Module `name` of `service` ("model" or "api"), e.g. service_module("model", "session")."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: one of {SERVICES}")
    folder = str(REPO / service)
    other = str(REPO / next(s for s in SERVICES if s != service))
    if other in sys.path:
        raise RuntimeError(f"this process already imports from {other}: one service per process")
    if folder not in sys.path:
        sys.path.append(folder)  # appended: stress_test's and the installed packages keep precedence
    return importlib.import_module(name)
