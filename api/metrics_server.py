"""`/metrics`: the API's own families (all gunicorn workers, multiprocess files) + the service gauges read from
Redis, and every live worker's metrics only when METRICS_MERGE_WORKERS=1 (off in a cluster, where Prometheus
scrapes each worker pod itself and a merged copy per API replica would count every figure twice or more).

Served on the app's port (`bp`), or with METRICS_PORT set only on a port of its own, by the gunicorn master
(`start`), so the public Service never exposes it.
"""

import os
from collections.abc import Iterable

from flask import Blueprint, Response, abort
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

import collector
import settings

bp = Blueprint("metrics", __name__)


def api_families() -> list[Metric]:
    """The API's own metric families: every process's files under gunicorn, else this process's registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return list(MultiProcessCollector(None).collect())
    return list(REGISTRY.collect())


class Exposition:
    """At scrape time: the API's families (every process's files under gunicorn, else this process's registry),
    then queue depth, live workers, Redis up (and the workers' merged families when METRICS_MERGE_WORKERS=1),
    names of the API's own never overwritten."""

    def collect(self) -> Iterable[Metric]:
        families = api_families()
        families += collector.collect(
            reserved={f.name for f in families}, merge_workers=bool(settings.METRICS_MERGE_WORKERS)
        )
        return families


def registry() -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Exposition())
    return reg


@bp.get("/metrics")
def scrape() -> Response:
    """The exposition on the app's port; with METRICS_PORT set it lives only on that port (404 here)."""
    if settings.METRICS_PORT:
        abort(404)
    return Response(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)  # mimetype= would add a charset


def start(port: int, addr: str = "0.0.0.0") -> None:
    """Serve the registry from a daemon thread of the calling process (gunicorn's master: when_ready)."""
    start_http_server(port, addr=addr, registry=registry())
