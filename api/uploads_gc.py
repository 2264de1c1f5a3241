"""Keeps the upload folder bounded: stored uploads only serve `/display`, so files older than UPLOAD_MAX_AGE_S go.

Runs from the request path at most once per UPLOAD_GC_INTERVAL_S per process (a scandir of one folder), so a
client sending endless unique files cannot fill the disk, and no extra process or cron job is needed.
"""

import logging
import os
import threading
import time

log = logging.getLogger(__name__)
_lock = threading.Lock()
_last_run = 0.0


def maybe_prune(folder: str, max_age_s: float, interval_s: float) -> int:
    """Prune `folder` if the last prune in this process is older than `interval_s`; returns files removed."""
    global _last_run
    now = time.time()
    if max_age_s <= 0 or now - _last_run < interval_s or not _lock.acquire(blocking=False):
        return 0
    try:
        _last_run = now
        return prune(folder, now - max_age_s)
    finally:
        _lock.release()


def prune(folder: str, older_than: float) -> int:
    """Delete regular files in `folder` last modified before `older_than` (unix time)."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < older_than:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # another process pruned it first
            continue
    if removed:
        log.info("pruned %d upload(s) older than %.0f s from %s", removed, time.time() - older_than, folder)
    return removed
