"""The rolling switch inside a worker, on tiny models in a real repository folder: a new version is built beside the
serving one and taken between two batches; a pin (live, in Redis) switches back; a version that does not load never
replaces the serving one."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from resnet_common import protocol
from helpers import enqueue, photo, result
from job_queue import JobQueue, connect
from metrics import WorkerMetrics
from model_watch import ModelWatch, rss_bytes
from testkit.tiny_model import make_tiny_model_dir
from worker import Worker
from classifier import Classifier


def publish(repo, version: int, seed: int) -> None:
    """As conversion/publish_version.py does: build in a temporary folder, then rename it into place."""
    tmp = repo / "resnet50" / f".tmp-{version}"
    make_tiny_model_dir(tmp, seed=seed)
    os.rename(tmp, repo / "resnet50" / str(version))


@pytest.fixture
def rolling(tmp_path, make_cfg, r):
    repo = tmp_path / "repository"
    publish(repo, 1, seed=0)
    cfg = make_cfg(MODEL_DIR="", MODEL_REPOSITORY=str(repo), MODEL_POLL_S=0.05)
    switched: list[str] = []
    metrics = WorkerMetrics("w-roll")
    watch = ModelWatch(
        cfg, connect(cfg, 100), lambda folder: Classifier(cfg, 1, False, folder), on_report=metrics.model_switch
    )
    clf = watch.initial(threading.Event())
    worker = Worker(
        cfg,
        clf,
        JobQueue(connect(cfg, 100), cfg, "w-roll"),
        metrics,
        watch,
        lambda c: switched.append(c.handle.version),
    )
    yield repo, watch, worker, switched
    worker.close()
    watch.stop()


def answer(r, worker) -> dict:
    job = enqueue(r, photo("cat.jpg"), top_k=3)
    worker.step(block=False)
    return result(r, job, timeout=2)


def test_new_version_is_built_beside_and_taken_between_batches(rolling, r):
    repo, watch, worker, switched = rolling
    first = answer(r, worker)
    assert first["model_version"] == "1" and watch.serving == "1"
    old_sha = worker.classifier.handle.sha256
    publish(repo, 2, seed=1)
    watch.poll()  # builds and warms version 2 while version 1 still serves
    assert worker.classifier.handle.version == "1" and watch._pending is not None
    second = answer(r, worker)  # the swap happens before this batch, never inside it
    assert second["model_version"] == "2" and switched == ["2"]
    assert worker.queue.streams == (protocol.JOB_STREAM, protocol.version_stream("2"))  # now reads version 2's jobs
    named = enqueue(r, photo("cat.jpg"), stream=protocol.version_stream("2"))
    worker.step(block=False)
    assert result(r, named, timeout=2)["model_version"] == "2"
    assert worker.classifier.handle.sha256 != old_sha and second["top_k"] != first["top_k"]
    registry = worker.metrics.registry
    samples = registry.get_sample_value("ml_worker_model_switch_seconds_count", {"worker": "w-roll"})
    rss = {
        p: registry.get_sample_value("ml_worker_model_switch_rss_bytes", {"worker": "w-roll", "phase": p})
        for p in ("before", "during", "after")
    }
    assert samples == 1 and all(v > 0 for v in rss.values()) and rss_bytes() > 0


def test_live_pin_rolls_back_and_clearing_it_rolls_forward(rolling, r):
    repo, watch, worker, switched = rolling
    publish(repo, 2, seed=1)
    watch.poll()
    assert answer(r, worker)["model_version"] == "2"
    r.hset(protocol.model_control_key("resnet50"), "pin", "1")
    watch.poll()
    assert answer(r, worker)["model_version"] == "1"
    r.delete(protocol.model_control_key("resnet50"))
    watch.poll()
    assert answer(r, worker)["model_version"] == "2" and switched == ["2", "1", "2"]


def test_removing_the_newest_folder_rolls_back(rolling, r):
    repo, watch, worker, _ = rolling
    publish(repo, 2, seed=1)
    watch.poll()
    assert answer(r, worker)["model_version"] == "2"
    shutil.rmtree(repo / "resnet50" / "2")
    watch.poll()
    assert answer(r, worker)["model_version"] == "1"


def test_a_version_that_does_not_load_never_replaces_the_serving_one(rolling, r, caplog):
    repo, watch, worker, switched = rolling
    broken = repo / "resnet50" / ".tmp-2"
    make_tiny_model_dir(broken)
    (broken / "tiny.onnx").write_bytes(b"not an onnx graph")
    os.rename(broken, repo / "resnet50" / "2")
    watch.poll()
    watch.poll()  # not retried while the folder is unchanged
    assert answer(r, worker)["model_version"] == "1" and switched == []
    assert sum("does not load" in rec.getMessage() for rec in caplog.records) == 1


def test_the_watch_thread_switches_on_its_own(rolling, r):
    repo, watch, worker, _ = rolling
    watch.start()
    publish(repo, 2, seed=1)
    reported = []
    watch.on_report = reported.append
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and answer(r, worker)["model_version"] != "2":
        time.sleep(0.05)
    assert answer(r, worker)["model_version"] == "2"
    time_limit = time.monotonic() + 30  # the thread then frees the old session and reports the figures
    while time.monotonic() < time_limit and not reported:
        time.sleep(0.05)
    assert [(rep.old_version, rep.new_version) for rep in reported] == [("1", "2")] and reported[0].rss_after > 0


def test_the_fallback_folder_serves_until_a_version_is_published(tmp_path, make_cfg, r):
    repo = tmp_path / "repository"
    baked = make_tiny_model_dir(tmp_path / "baked", seed=2)
    cfg = make_cfg(MODEL_DIR="", MODEL_REPOSITORY=str(repo), MODEL_FALLBACK_DIR=str(baked))
    watch = ModelWatch(cfg, connect(cfg, 100), lambda folder: Classifier(cfg, 1, False, folder))
    clf = watch.initial(threading.Event())
    assert clf.handle.folder == str(baked) and clf.handle.version == ""
    watch.poll()
    assert watch.take(clf) is None  # still nothing published
    publish(repo, 1, seed=0)
    watch.poll()
    new, report = watch.take(clf)
    assert new.handle.version == "1" and report.old_version == ""
    new.finalize()
