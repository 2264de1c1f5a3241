"""Keys of ours holding another type of value than the protocol gives them (docs/queue-protocol.md): a hand edit, or
a stray client with the password. Every command on such a key fails with WRONGTYPE; the services find which key it
is with TYPE. The workers, and the API's readiness routes for ml:jobs, move such a key out of the way (`move_aside`),
keeping the stray value for a human to look at, so the next write recreates it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from resnet_common import protocol

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# KEYS[1] the key, KEYS[2] where to move it; ARGV[1] the type it should hold, ARGV[2] how long the copy is kept (s).
# TYPE and RENAME in one script: a key another worker has just moved, or that a write has since recreated with the
# right type, is never moved.
_MOVE_ASIDE_LUA = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == ARGV[1] or kind == 'none' then
  return false
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return kind
"""


def is_wrong_type(exc: BaseException) -> bool:
    """A command failed because a key holds another type of value (Redis' WRONGTYPE error; redis-py quotes it in
    the error of a pipeline's command)."""
    return "WRONGTYPE" in str(exc)


def wrong_types(r: redis.Redis, keys: Sequence[str], expected: str) -> dict[str, str]:
    """Those of `keys` that hold something other than `expected` (a Redis type name: "stream", "hash", …) → the
    type they hold, in one round trip. An absent key is not wrong: the next write creates it."""
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    kinds = [kind.decode() if isinstance(kind, bytes) else str(kind) for kind in pipe.execute()]
    return {key: kind for key, kind in zip(keys, kinds) if kind not in (expected, "none")}


def move_aside(r: redis.Redis, key: str, expected: str) -> str | None:
    """Rename `key` to protocol.set_aside_key(key), kept SET_ASIDE_TTL_S, if it holds something other than
    `expected` (logged); the type it held, or None when it was of that type or absent. Raises redis.ResponseError
    when Redis refuses the rename (an ACL without RENAME, a read-only replica): the caller keeps working around it."""
    aside = protocol.set_aside_key(key)
    kind = r.eval(_MOVE_ASIDE_LUA, 2, key, aside, expected, protocol.SET_ASIDE_TTL_S)
    if not kind:
        return None
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    days = protocol.SET_ASIDE_TTL_S / 86400
    log.error("%s held a %s, not a %s: moved it to %s (kept %g days)", key, kind, expected, aside, days)
    return kind
