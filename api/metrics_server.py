"""`/metrics` on a port of its own (METRICS_PORT), served by the gunicorn master, so the public Service never
exposes it: the API's own families (all gunicorn workers, multiprocess files) + the service gauges read from
Redis, and every live worker's metrics only when METRICS_MERGE_WORKERS=1 (off in a cluster, where Prometheus
scrapes each worker pod itself and a merged copy per API replica would count every figure twice or more).
"""

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

import collector
import settings


class Exposition:
    """At scrape time: the API's multiprocess families, then queue depth, live workers, Redis up (and the
    workers' merged families when METRICS_MERGE_WORKERS=1), names of the API's own never overwritten."""

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            families += MultiProcessCollector(None).collect()
        families += collector.collect(
            reserved={f.name for f in families}, merge_workers=bool(settings.METRICS_MERGE_WORKERS)
        )
        return families


def registry() -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Exposition())
    return reg


def start(port: int, addr: str = "0.0.0.0") -> None:
    """Serve the registry from a daemon thread of the calling process (gunicorn's master: when_ready)."""
    start_http_server(port, addr=addr, registry=registry())
