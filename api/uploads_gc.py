"""Keeps the upload folder bounded: stored uploads only serve `/display`, so files older than UPLOAD_MAX_AGE_S go,
and beyond UPLOAD_MAX_BYTES the oldest go first.

Runs from the request path at most once per UPLOAD_GC_INTERVAL_S per process (a scandir of one folder), so a
client sending endless unique files cannot fill the disk, and no extra process or cron job is needed. A file
written in the last `grace_s` seconds is never deleted: a request that just stored it reads it within its deadline.
"""

import logging
import os
import threading
import time

log = logging.getLogger(__name__)
_lock = threading.Lock()
_last_run = 0.0


def maybe_prune(folder: str, max_age_s: float, interval_s: float, max_bytes: int = 0, grace_s: float = 0.0) -> int:
    """Prune `folder` if the last prune in this process is older than `interval_s`; returns files removed."""
    global _last_run
    now = time.time()
    if (max_age_s <= 0 and max_bytes <= 0) or now - _last_run < interval_s or not _lock.acquire(blocking=False):
        return 0
    try:
        _last_run = now
        older_than = now - max_age_s if max_age_s > 0 else 0.0
        return prune(folder, older_than, max_bytes, protect_after=now - grace_s)
    finally:
        _lock.release()


def prune(folder: str, older_than: float, max_bytes: int = 0, protect_after: float | None = None) -> int:
    """Delete regular files in `folder` last modified before `older_than` (unix time), then the oldest until the
    rest fit in `max_bytes` (0: no cap). Files modified after `protect_after` are never deleted."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    files = []  # (mtime, size, path), of the files that stay after the age pass
    removed = 0
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            protected = protect_after is not None and stat.st_mtime > protect_after
            if stat.st_mtime < older_than and not protected:
                os.unlink(entry.path)
                removed += 1
            else:
                files.append((stat.st_mtime, stat.st_size, entry.path, protected))
        except FileNotFoundError:  # another process pruned it first
            continue
    if max_bytes > 0:
        total = sum(size for _, size, _, _ in files)
        for _, size, path, protected in sorted(files):
            if total <= max_bytes:
                break
            if protected:
                continue
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
            total -= size
    if removed:
        log.info(
            "pruned %d upload(s) from %s (age limit %.0f s, size cap %d B)",
            removed,
            folder,
            time.time() - older_than if older_than else 0,
            max_bytes,
        )
    return removed
