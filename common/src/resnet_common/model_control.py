"""The live version policy of a model, kept in Redis at protocol.model_control_key(name): the one reading and
writing of that hash, shared by the API's load/unload routes (which write it) and the workers (which read it each
MODEL_POLL_S and switch versions between two batches).

Fields: `pin` (a version number) and `unloaded` (comma-separated version numbers). Anything else in them (a name
that is not ASCII digits, bytes that are not UTF-8) is ignored, so a hand-edited hash never stops serving or fails
a route; the next write drops it.
"""

from __future__ import annotations

import dataclasses

from resnet_common import protocol
from resnet_common.repository_layout import version_number


@dataclasses.dataclass(frozen=True)
class Control:
    pin: int | None = None
    unloaded: frozenset[int] = frozenset()

    @classmethod
    def from_hash(cls, raw: dict) -> Control:
        def text(key: str) -> str:
            value = raw.get(key) or raw.get(key.encode()) or b""
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

        unloaded = {version_number(v.strip()) for v in text("unloaded").split(",")}
        return cls(version_number(text("pin")), frozenset(unloaded - {None}))

    def pinned(self, version: int) -> Control:
        """Serve `version` whatever else is in the repository (a rollback), and no longer count it as unloaded."""
        return Control(version, self.unloaded - {version})

    def unloading(self, version: int) -> Control:
        """Stop serving `version`: a pin to it goes too, so workers move to the newest version left."""
        return Control(None if self.pin == version else self.pin, self.unloaded | {version})

    def sorted_unloaded(self) -> list[int]:
        return sorted(self.unloaded)

    def to_hash(self) -> dict[str, str]:
        """The hash's fields; an empty policy has none (and the key is deleted)."""
        fields = {"pin": str(self.pin)} if self.pin is not None else {}
        if self.unloaded:
            fields["unloaded"] = ",".join(map(str, self.sorted_unloaded()))
        return fields


def read(client, name: str) -> Control:
    return Control.from_hash(client.hgetall(protocol.model_control_key(name)))


def write(client, name: str, control: Control) -> None:
    """Replace the policy in one transaction; an empty policy deletes the key (serve the newest version)."""
    key = protocol.model_control_key(name)
    pipe = client.pipeline(transaction=True).delete(key)
    if fields := control.to_hash():
        pipe.hset(key, mapping=fields)
    pipe.execute()
