"""Model service: `predict(image_name)` for in-process use, `classify_process()` the queue worker loop.

`python ml_service.py` starts WORKERS worker processes (see session.default_topology for the defaults).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any
from collections.abc import Callable

import settings
from classifier import Classifier
from resnet_common.preprocess import preprocess_bytes

log = logging.getLogger("ml_service")
_classifier: Classifier | None = None
_classifier_lock = threading.Lock()


def _shared_classifier() -> Classifier:
    """The module's classifier for predict(): created on first use, in the process that uses it."""
    global _classifier
    with _classifier_lock:
        if _classifier is None:
            from session import available_cores

            cfg = settings.load()
            folder = cfg.MODEL_DIR or _repository_folder(cfg)
            clf = Classifier(cfg, threads=cfg.THREADS or available_cores(), spin=False, model_dir=folder)
            clf.initialize()
            _classifier = clf
    return _classifier


def _repository_folder(cfg: settings.Settings) -> str:
    """The version folder the policy names without Redis (MODEL_VERSION, else the newest)."""
    import repository

    chosen = repository.choose(
        repository.versions(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME), repository.parse_env_pin(cfg.MODEL_VERSION)
    )
    if chosen is None:
        raise FileNotFoundError(f"no model version in {cfg.MODEL_REPOSITORY}/{cfg.MODEL_NAME}: run make model")
    return str(repository.model_root(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME) / str(chosen))


def predict(image_name: str) -> tuple[str, float]:
    """Classify settings.UPLOAD_FOLDER/image_name → (class name, probability rounded to 4 decimals).

    Raises preprocess.InvalidImage for undecodable files and RuntimeError if inference fails.
    """
    with open(os.path.join(settings.UPLOAD_FOLDER, image_name), "rb") as fh:
        data = fh.read()
    clf = _shared_classifier()
    pred = clf.predict_batch([preprocess_bytes(data, clf.cfg.MAX_IMAGE_PIXELS)], top_k=1)[0]
    if not pred.ok:
        raise RuntimeError(f"{pred.error}: {pred.message}")
    return pred.top_k[0]


def _set_parent_death_signal() -> None:
    """Linux: get SIGTERM if the supervisor dies, so no orphan worker keeps consuming jobs."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def classify_process(
    index: int = 0,
    cfg: settings.Settings | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[], Any] | None = None,
    on_stall: Callable[[float], None] | None = None,
) -> int:
    """One worker process: load and warm the model, then serve the queue until SIGTERM/SIGINT (or `stop`).
    `on_stall`: called once when the loop has not come round for HEALTH_STALL_S (stall_watchdog)."""
    import health_server
    from heartbeat import Heartbeat
    from job_queue import JobQueue, connect
    from metrics import WorkerMetrics
    from model_watch import ModelWatch
    from session import resolve_topology, spinning
    from stall_watchdog import StallWatchdog
    from worker import Worker

    cfg = cfg or settings.load()
    configure_logging(cfg.LOG_LEVEL)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _stop_on_signals(stop)
    name = settings.worker_name(cfg, index)
    for problem in settings.problems(cfg):
        log.warning("configuration: %s", problem)
    workers, threads = resolve_topology(cfg)
    metrics = WorkerMetrics(name)
    probe = health_server.Probe(cfg.HEALTH_STALL_S)
    if cfg.METRICS_PORT:
        health_server.serve(cfg.METRICS_PORT + index, metrics.registry, probe, cfg.METRICS_ADDR)
    client = connect(cfg, block_ms=settings.read_block_ms(cfg))
    advertised = {"batch_size": str(cfg.BATCH_SIZE), "threads": str(threads)}
    heartbeat = Heartbeat(client, cfg, name, advertised, metrics.text, metrics.key_moved_aside)
    heartbeat.start()
    started = time.monotonic()
    spin = spinning(cfg, workers)
    watch = None
    if not cfg.MODEL_DIR:
        watch = ModelWatch(
            cfg,
            client,
            lambda folder: Classifier(cfg, threads, spin, folder),
            lambda found: heartbeat.set(repository_versions=",".join(map(str, found))),
            metrics.model_switch,
        )
    classifier = Classifier(cfg, threads=threads, spin=spin)
    worker = watchdog = None

    def advertise(clf: Classifier) -> None:
        h = clf.handle
        heartbeat.set(
            model=h.model,
            variant=h.variant,
            runtime=h.runtime,
            model_sha256=h.sha256,
            model_version=h.version,
            classes=str(len(clf.labels)),
            ready="1",
        )

    try:
        if watch is None:
            classifier.initialize()  # MODEL_DIR: exactly that folder, never switched
        else:
            classifier = watch.initial(stop)
            watch.start()
        handle = classifier.handle
        advertise(classifier)
        probe.ready = True
        if on_ready:
            on_ready()
        log.info(
            "worker %s ready: %s/%s version %s, %d thread(s), batch %d",
            name,
            handle.model,
            handle.variant,
            handle.version or "-",
            threads,
            cfg.BATCH_SIZE,
        )
        queue = JobQueue(client, cfg, name, handle.version, metrics.key_moved_aside)
        worker = Worker(cfg, classifier, queue, metrics, watch, advertise)
        probe.last_loop = lambda: worker.last_loop
        if on_stall is not None:
            watchdog = StallWatchdog(probe.alive, on_stall, min(5.0, cfg.HEALTH_STALL_S / 4)).start()
        worker.run(stop)
    except InterruptedError:
        log.info("worker %s stopped while waiting for a model", name)
    finally:
        if watchdog is not None:
            watchdog.stop()
        if watch is not None:
            watch.stop()
        heartbeat.stop(remove=True)
        (worker.classifier if worker else classifier).finalize()
        done = worker.jobs if worker else 0
        log.info(
            "worker %s stopped after %.0f s: %d jobs in %d batches",
            name,
            time.monotonic() - started,
            done,
            worker.batches if worker else 0,
        )
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set `stop` from a watcher thread, never from the Python handler itself: a handler runs in
    the main thread between bytecodes and deadlocks if that thread already holds the Event's own lock (seen under
    supervisord, whose group stop and the parent's forwarding deliver SIGTERM twice). The handler does nothing;
    Python's C-level handler writes the signal to the wakeup pipe, which the watcher reads."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)

    def watch() -> None:
        os.read(read_fd, 1)
        stop.set()

    threading.Thread(target=watch, name="stop-signals", daemon=True).start()


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s [%(processName)s %(process)d] %(name)s: %(message)s",
    )
    logging.getLogger("redis").setLevel(max(logging.INFO, logging.getLogger().level))


def _child(index: int, ready: Any) -> None:
    _set_parent_death_signal()
    import stall_watchdog

    sys.exit(classify_process(index, on_ready=ready.set, on_stall=stall_watchdog.end_process))


def main() -> int:
    from session import resolve_topology
    from supervisor import supervise

    cfg = settings.load()
    configure_logging(cfg.LOG_LEVEL)
    workers, threads = resolve_topology(cfg)
    log.info("starting %d worker process(es) × %d intra-op thread(s), batch size %d", workers, threads, cfg.BATCH_SIZE)
    return supervise(workers, _child)


if __name__ == "__main__":
    sys.exit(main())
