"""Keeps each page upload in Redis for DISPLAY_TTL_S so `/display/<name>` works on whichever API replica serves it.

Behind a load balancer the POST that stored the upload and the browser's GET of its image often reach different
replicas; a replica-local folder would then 404. Redis is already shared by every replica, the image is needed
only for the page shown right after the upload (the browser caches it), and a TTL plus a size bound
(DISPLAY_MAX_BYTES; larger uploads are kept on local disk only) bounds the memory it takes. Keys are
content-addressed (`ml:display:<md5>.<ext>`), so re-uploads of one image share one key. Best effort: a Redis
error here never fails the classification.
"""

import logging

import redis

import job_client
import settings

log = logging.getLogger(__name__)
KEY_PREFIX = "ml:display:"


def key(name: str) -> str:
    return f"{KEY_PREFIX}{name}"


def keep(name: str, data: bytes) -> bool:
    """Store `data` under `name` with the TTL; False when too large, disabled (TTL 0) or Redis failed."""
    if settings.DISPLAY_TTL_S <= 0 or len(data) > settings.DISPLAY_MAX_BYTES:
        return False
    try:
        job_client.client().set(key(name), data, ex=settings.DISPLAY_TTL_S)
    except redis.RedisError as exc:
        log.warning("could not keep %s for display: %s", name, exc)
        return False
    return True


def fetch(name: str) -> bytes | None:
    """The stored bytes of `name`, or None (expired, never stored, Redis unreachable)."""
    try:
        return job_client.client().get(key(name))
    except redis.RedisError as exc:
        log.warning("could not read %s for display: %s", name, exc)
        return None
