"""Keeps each page upload's display rendition in Redis for DISPLAY_TTL_S so `/display/<name>` works on whichever
API replica serves it.

Behind a load balancer the POST that stored the upload and the browser's GET of its image often reach different
replicas; a replica-local folder would then 404. Redis is already shared by every replica, and the image is
needed only for the page shown right after the upload (the browser caches it). What is kept is the rendition the
page shows (a JPEG of at most images.DISPLAY_SIDE pixels a side, tens of KiB), never the upload (up to 16 MiB),
and only once the upload's job was admitted and answered. All renditions together stay under DISPLAY_MAX_BYTES:
the oldest are dropped first, like the response cache, so page uploads never push Redis towards maxmemory (where
eviction would take results, cached answers and worker status). Best effort: a Redis error here never fails the
classification.
"""

import logging
import time

import redis
from resnet_common import bounded_store

import job_client
import settings

log = logging.getLogger(__name__)
KEY_PREFIX = "ml:display:"
INDEX_KEY = "ml:display-index"  # zset key -> time stored: trimmed oldest first
SIZES_KEY = "ml:display-sizes"  # hash key -> bytes counted
BYTES_KEY = "ml:display-bytes"  # total bytes counted, kept <= DISPLAY_MAX_BYTES
MIMETYPE = "image/jpeg"  # every rendition is a JPEG, whatever the upload's format


def key(name: str) -> str:
    return f"{KEY_PREFIX}{name}"


def keep(name: str, rendition: bytes) -> bool:
    """Store the display rendition of `name` with the TTL, within the byte bound; False when disabled (TTL 0),
    larger than the whole bound, or Redis failed."""
    if settings.DISPLAY_TTL_S <= 0:
        return False
    r = job_client.client()
    try:
        script = getattr(r, "_ml_display_store", None)
        if script is None:
            script = r._ml_display_store = r.register_script(bounded_store.STORE_LUA)
        stored = script(
            keys=[key(name), INDEX_KEY, SIZES_KEY, BYTES_KEY],
            args=[rendition, settings.DISPLAY_TTL_S, repr(time.time()), settings.DISPLAY_MAX_BYTES],
        )
    except redis.RedisError as exc:
        log.warning("could not keep %s for display: %s", name, exc)
        return False
    return bool(stored)


def fetch(name: str) -> bytes | None:
    """The stored rendition of `name`, or None (expired, dropped, never stored, Redis unreachable)."""
    try:
        return job_client.client().get(key(name))
    except redis.RedisError as exc:
        log.warning("could not read %s for display: %s", name, exc)
        return None
