"""Fixtures: a real redis-server (testkit), the tiny model or the converted one, worker settings and workers."""

from __future__ import annotations

import json
import os

import pytest

import settings
from classifier import Classifier
from job_queue import JobQueue, connect
from metrics import WorkerMetrics
from worker import Worker

pytest_plugins = ["testkit.fixtures"]

REAL_LABELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "imagenet_class_index.json")


@pytest.fixture(scope="session")
def labels_file(tmp_path_factory) -> str:
    """The shipped Keras class index, or (until the conversion step has generated it) a stand-in."""
    if os.path.exists(REAL_LABELS):
        return REAL_LABELS
    path = tmp_path_factory.mktemp("labels") / "imagenet_class_index.json"
    path.write_text(json.dumps({str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}))
    return str(path)


@pytest.fixture
def make_cfg(redis_server, labels_file, tiny_model_dir):
    """settings.load() with test defaults: short claim/idle times, this test's Redis, the tiny model."""

    def make(**overrides) -> settings.Settings:
        base = dict(
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=redis_server.port,
            MODEL_DIR=tiny_model_dir,
            LABELS_FILE=labels_file,
            THREADS=1,
            WORKERS=1,
            BATCH_SIZE=8,
            CLAIM_IDLE_MS=5000,
            CLAIM_INTERVAL_S=0.05,
            HEARTBEAT_INTERVAL_S=0.1,
            METRICS_PUSH_INTERVAL_S=0,
            SUMMARY_INTERVAL_S=3600,
        )
        base.update(overrides)
        return settings.load(**base)

    return make


@pytest.fixture
def make_worker(make_cfg):
    """Workers driven one step at a time against the session's Redis; closed after the test."""
    workers: list[Worker] = []

    def make(name: str = "w-test", **overrides) -> Worker:
        cfg = make_cfg(**overrides)
        clf = Classifier(cfg, threads=1)
        clf.initialize()
        metrics = WorkerMetrics(name)  # wired as ml_service wires it
        queue = JobQueue(connect(cfg, 100), cfg, name, on_moved_aside=metrics.key_moved_aside)
        workers.append(Worker(cfg, clf, queue, metrics))
        return workers[-1]

    yield make
    for worker in workers:
        worker.close()
