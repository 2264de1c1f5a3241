"""The worker's probe endpoints on its metrics port: readiness follows the model, liveness the loop."""

from __future__ import annotations

import time

import pytest
import requests

import health_server
from metrics import WorkerMetrics


@pytest.fixture
def served():
    probe = health_server.Probe(stall_s=5)
    server = health_server.serve(0, WorkerMetrics("w-probe").registry, probe, addr="127.0.0.1")
    yield f"http://127.0.0.1:{server.server_port}", probe
    server.shutdown()


def test_ready_only_once_the_model_is_warmed(served):
    url, probe = served
    assert requests.get(url + "/readyz", timeout=2).status_code == 503
    probe.ready = True
    assert requests.get(url + "/readyz", timeout=2).json() == {"ready": True}


def test_liveness_fails_only_when_the_loop_stalls(served):
    url, probe = served
    assert requests.get(url + "/healthz", timeout=2).status_code == 200
    probe.started -= 60
    probe.last_loop = lambda: time.monotonic() - 6
    body = requests.get(url + "/healthz", timeout=2)
    assert body.status_code == 503 and body.json()["loop_age_s"] >= 6
    probe.last_loop = time.monotonic
    assert requests.get(url + "/healthz", timeout=2).status_code == 200


def test_metrics_are_still_served(served):
    url, _ = served
    text = requests.get(url + "/metrics", timeout=2).text
    assert 'ml_worker_jobs_total{outcome="ok",worker="w-probe"} 0.0' in text
