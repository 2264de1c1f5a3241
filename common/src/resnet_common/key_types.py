"""Keys of ours holding another type of value than the protocol gives them (docs/queue-protocol.md): a hand edit, or
a stray client with the password. Every command on such a key fails with WRONGTYPE; the services find which key it
is with TYPE, and each decides what to do with it (a worker sets a stream aside or replaces its own status key, the
API answers not ready)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis


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
