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

import job_client
import settings

log = logging.getLogger(__name__)
KEY_PREFIX = "ml:display:"
INDEX_KEY = "ml:display-index"  # zset key -> time stored: trimmed oldest first
SIZES_KEY = "ml:display-sizes"  # hash key -> bytes counted
BYTES_KEY = "ml:display-bytes"  # total bytes counted, kept <= DISPLAY_MAX_BYTES
MIMETYPE = "image/jpeg"  # every rendition is a JPEG, whatever the upload's format

# KEYS[1] the entry, [2] index, [3] sizes, [4] byte counter; ARGV[1] value, [2] TTL s, [3] now, [4] most bytes.
# Expired entries are forgotten first, then the oldest until the new one fits; only display keys are touched.
_STORE_LUA = """
local key, index, sizes, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ttl, now, most = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function forget(k)
  local n = tonumber(redis.call('HGET', sizes, k) or '0')
  redis.call('DEL', k)
  redis.call('HDEL', sizes, k)
  redis.call('ZREM', index, k)
  redis.call('DECRBY', total, n)
end
for _, k in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now - ttl, 'LIMIT', 0, 64)) do forget(k) end
if redis.call('HEXISTS', sizes, key) == 1 then forget(key) end
local size = #ARGV[1] + #key + 96
if size > most then return 0 end
while tonumber(redis.call('GET', total) or '0') + size > most do
  local oldest = redis.call('ZRANGE', index, 0, 0)
  if #oldest == 0 then redis.call('SET', total, 0) break end
  forget(oldest[1])
end
redis.call('SET', key, ARGV[1], 'EX', ttl)
redis.call('ZADD', index, now, key)
redis.call('HSET', sizes, key, size)
redis.call('INCRBY', total, size)
return 1
"""


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
            script = r._ml_display_store = r.register_script(_STORE_LUA)
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
