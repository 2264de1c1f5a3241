"""Rolling model switch inside one worker: watch the repository, build the new version beside the serving one, hand
it over between two batches, free the old one.

A thread polls every MODEL_POLL_S: the repository's versions (repository.versions) and the live policy the
load/unload routes keep in Redis (resnet_common.model_control) decide the version wanted (repository.choose). When it
differs from the one serving, the thread builds and warms a Classifier for it while the worker keeps answering with
the old one; the worker loop calls `take()` between batches and swaps, so every batch is computed by exactly one
version. A version that fails to load is logged and skipped until its folder changes; the old one keeps serving.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

import repository
from resnet_common import malloc_policy, model_control
from resnet_common.repository_layout import CARD_NAME
from classifier import Classifier
from settings import Settings

log = logging.getLogger(__name__)
MB = 1 << 20


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc keeps them otherwise, and RSS would not show the old session gone)."""
    gc.collect()
    malloc_policy.trim()


@dataclass
class Switch:
    """A built and warmed classifier waiting for the worker, and what it cost so far."""

    classifier: Classifier
    version: str
    decided: float  # monotonic time the new version was seen
    build_s: float
    rss_before: int
    rss_during: int


@dataclass
class SwitchReport:
    old_version: str
    new_version: str
    seconds: float  # from seeing the new version to serving it
    build_s: float  # of which building and warming the new session
    pause_ms: float  # the worker loop's pause to swap (between two batches)
    rss_before: int
    rss_during: int
    rss_after: int

    def line(self) -> str:
        return (
            f"switched model version {self.old_version or '-'} -> {self.new_version} in {self.seconds:.2f} s "
            f"(build + warm-up {self.build_s:.2f} s, swap pause {self.pause_ms:.2f} ms); RSS before "
            f"{self.rss_before / MB:.0f} MB, during (two sessions) {self.rss_during / MB:.0f} MB, after "
            f"{self.rss_after / MB:.0f} MB"
        )


class ModelWatch:
    """Decides the version to serve and prepares switches; `make_classifier(folder)` builds an uninitialised one."""

    def __init__(
        self,
        cfg: Settings,
        client: redis.Redis | None,
        make_classifier: Callable[[str], Classifier],
        on_versions: Callable[[list[int]], None] | None = None,
        on_report: Callable[[SwitchReport], None] | None = None,
    ) -> None:
        self.cfg, self.client, self.make_classifier = cfg, client, make_classifier
        self.on_versions = on_versions  # told the repository's versions whenever they change (the heartbeat)
        self.on_report = on_report  # told each finished switch, with its figures (the worker's metrics)
        self.available: list[int] | None = None
        self.env_pin = repository.parse_env_pin(cfg.MODEL_VERSION)
        self.control = model_control.Control()
        self.serving = ""  # version of the classifier the worker uses
        self._pending: Switch | None = None
        self._failed: dict[str, float] = {}  # version -> mtime of its card when it failed to load
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a switch was taken: release the old session's memory now
        self._freeing: SwitchReport | None = None
        self._thread: threading.Thread | None = None

    # deciding ------------------------------------------------------------------------------------------
    def folder(self, version: str) -> str:
        return str(repository.model_root(self.cfg.MODEL_REPOSITORY, self.cfg.MODEL_NAME) / version)

    def wanted(self) -> str | None:
        """The version the policy names now (reading the live policy from Redis when it answers)."""
        if self.client is not None:
            try:
                self.control = model_control.read(self.client, self.cfg.MODEL_NAME)
            except redis.RedisError as exc:  # keep the last policy seen: an outage must not flip versions
                log.debug("model control unreadable: %s", exc)
        available = repository.versions(self.cfg.MODEL_REPOSITORY, self.cfg.MODEL_NAME)
        if available != self.available:
            self.available = available
            if self.on_versions:
                self.on_versions(available)
        chosen = repository.choose(available, self.env_pin, self.control)
        return None if chosen is None else str(chosen)

    def _card_mtime(self, version: str) -> float:
        try:
            return os.stat(os.path.join(self.folder(version), CARD_NAME)).st_mtime
        except OSError:
            return 0.0

    def build(self, version: str) -> Classifier:
        classifier = self.make_classifier(self.folder(version))
        classifier.initialize()  # session + labels + one warm-up run
        return classifier

    def initial(self, stop: threading.Event) -> Classifier:
        """The first classifier: waits (logging every 30 s) until the repository holds a version it can load."""
        last_log = 0.0
        while not stop.is_set():
            version = self.wanted()
            if version is None and self.cfg.MODEL_FALLBACK_DIR:
                root = repository.model_root(self.cfg.MODEL_REPOSITORY, self.cfg.MODEL_NAME)
                log.warning("no version in %s: serving %s until one is added", root, self.cfg.MODEL_FALLBACK_DIR)
                classifier = self.make_classifier(self.cfg.MODEL_FALLBACK_DIR)
                classifier.initialize()
                return classifier  # self.serving stays "": the first published version replaces it
            if version is not None:
                try:
                    classifier = self.build(version)
                    self.serving = version
                    return classifier
                except Exception as exc:
                    self._failed[version] = self._card_mtime(version)
                    log.error("model version %s does not load: %s", version, exc)
            if time.monotonic() - last_log > 30:
                root = repository.model_root(self.cfg.MODEL_REPOSITORY, self.cfg.MODEL_NAME)
                log.warning("no loadable model version in %s yet: waiting (make model adds one)", root)
                last_log = time.monotonic()
            stop.wait(min(self.cfg.MODEL_POLL_S, 1.0))
        raise InterruptedError("stopped before a model was loaded")

    def poll(self) -> None:
        """One look: when another version is wanted, build it (in the calling thread) and leave it for `take()`."""
        version = self.wanted()
        with self._lock:
            pending = self._pending.version if self._pending else None
        if version is None or version in (self.serving, pending):
            return
        if version in self._failed and self._failed[version] == self._card_mtime(version):
            return
        decided, rss_before = time.monotonic(), rss_bytes()
        log.info("model version %s wanted (serving %s): building it beside the serving one", version, self.serving)
        try:
            classifier = self.build(version)
        except Exception as exc:
            self._failed[version] = self._card_mtime(version)
            log.error("model version %s does not load, version %s keeps serving: %s", version, self.serving, exc)
            return
        switch = Switch(classifier, version, decided, time.monotonic() - decided, rss_before, rss_bytes())
        with self._lock:
            stale, self._pending = self._pending, switch
        if stale is not None:  # wanted changed again while this one was built: drop the older candidate
            stale.classifier.finalize()
            release_freed_memory()

    # switching -----------------------------------------------------------------------------------------
    @property
    def switch_ready(self) -> bool:
        """A version is built and warmed: the worker takes it between this batch and the next."""
        return self._pending is not None

    def take(self, current: Classifier) -> tuple[Classifier, SwitchReport] | None:
        """Called by the worker between batches: the classifier to use from now on, or None to keep `current`."""
        if self._pending is None:
            return None
        paused = time.perf_counter()
        with self._lock:
            switch, self._pending = self._pending, None
        if switch is None:
            return None
        old_version, self.serving = self.serving, switch.version
        current.finalize()  # drops its session: the worker's reference to `current` is replaced by the caller
        report = SwitchReport(
            old_version,
            switch.version,
            time.monotonic() - switch.decided,
            switch.build_s,
            (time.perf_counter() - paused) * 1000,
            switch.rss_before,
            switch.rss_during,
            0,
        )
        with self._lock:
            self._freeing = report
        if self._thread is None:
            self.finish()
        else:
            self._wake.set()  # the watch thread hands the freed heap back, off the worker loop
        return switch.classifier, report

    def finish(self) -> None:
        """After a switch: return the old session's memory to the OS, then log and report the switch's figures."""
        with self._lock:
            report, self._freeing = self._freeing, None
        if report is None:
            return
        release_freed_memory()
        report.rss_after = rss_bytes()
        log.info("%s", report.line())
        if self.on_report:
            self.on_report(report)

    # the thread ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="model-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        next_poll = time.monotonic() + self.cfg.MODEL_POLL_S
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_poll - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.finish()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.cfg.MODEL_POLL_S
                    self.poll()
            except Exception:
                log.exception("model watch failed; trying again in %.0f s", self.cfg.MODEL_POLL_S)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.classifier.finalize()
