"""The worker's only HTTP: Prometheus `/metrics` plus `/healthz` and `/readyz` for the cluster's probes.

Served from a daemon thread on METRICS_ADDR:METRICS_PORT + index (never the public Service's port). `/healthz` (liveness) asks
only "does the worker loop still come round": it never touches Redis, so a Redis outage — when the loop merely
backs off — never gets healthy workers restarted. `/readyz` is "model loaded and warmed".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler, make_wsgi_app


class Probe:
    """What the probes read: `ready` once warmed; `last_loop()` the monotonic time the loop last came round."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.ready = False
        self.started = time.monotonic()
        self.last_loop: Callable[[], float] = lambda: self.started

    def alive(self) -> tuple[bool, float]:
        age = time.monotonic() - max(self.started, self.last_loop())
        return age < self.stall_s, age


def app(registry: CollectorRegistry, probe: Probe):
    """WSGI app: /healthz, /readyz as small JSON; every other path is the metrics exposition."""
    metrics_app = make_wsgi_app(registry)

    def reply(start_response, ok: bool, body: dict):
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    def handle(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok, age = probe.alive()
            return reply(start_response, ok, {"alive": ok, "loop_age_s": round(age, 3)})
        if path == "/readyz":
            return reply(start_response, probe.ready, {"ready": probe.ready})
        return metrics_app(environ, start_response)

    return handle


def serve(port: int, registry: CollectorRegistry, probe: Probe, addr: str = "127.0.0.1") -> ThreadingWSGIServer:
    """Start serving in a daemon thread; returns the server (its `server_port` is the bound port)."""
    server = make_server(addr, port, app(registry, probe), ThreadingWSGIServer, handler_class=_SilentHandler)
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
