"""What the worker tests share (imported as `helpers`, never from conftest): enqueue a job exactly as the API does,
read its result, inspect the consumer group."""

from __future__ import annotations

import json
import os
import time
import uuid

import redis

from resnet_common import protocol
import settings
from testkit import paths, photo

MODEL_SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS = str(paths.PHOTOS)
__all__ = [
    "MODEL_SRC",
    "PHOTOS",
    "deliver",
    "enqueue",
    "pending",
    "pending_entries",
    "photo",
    "result",
    "subprocess_env",
]


def enqueue(
    client: redis.Redis,
    image: bytes,
    top_k: int = 5,
    ttl_s: float = 30.0,
    job_id: str | None = None,
    stream: str = protocol.JOB_STREAM,
    **extra,
) -> str:
    """XADD a job exactly as the API does (docs/queue-protocol.md) to `stream`: the image decoded to its 224×224×3
    pixels; bytes that do not decode go as an old-style `image` field, which the worker refuses. Returns its id."""
    from resnet_common.preprocess import InvalidImage, decode_pixels

    job_id = job_id or uuid.uuid4().hex
    now = time.time()
    try:
        payload = {"pixels": decode_pixels(image).tobytes(), "preprocess": "keras"}
    except InvalidImage:
        payload = {"image": image}
    fields = {
        "id": job_id,
        **payload,
        "filename": f"{job_id}.jpg",
        "enqueued": repr(now),
        "deadline": repr(now + ttl_s),
        "top_k": str(top_k),
        **extra,
    }
    client.xadd(stream, fields)
    return job_id


def result(client: redis.Redis, job_id: str, timeout: float = 10) -> dict | None:
    reply = client.blpop([protocol.result_key(job_id)], timeout=timeout)
    return json.loads(reply[1]) if reply else None


def pending(client: redis.Redis) -> int:
    """How many jobs the consumer group has handed out and not yet seen acknowledged."""
    return client.xpending(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)["pending"]


def pending_entries(client: redis.Redis) -> dict[str, tuple[str, int, int]]:
    """entry id → (consumer, idle ms, deliveries)."""
    return {
        p["message_id"].decode(): (p["consumer"].decode(), p["time_since_delivered"], p["times_delivered"])
        for p in client.xpending_range(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, "-", "+", 100)
    }


def deliver(client: redis.Redis, n: int) -> None:
    """Hand the newest job out n times to consumers that never answer (as crashing workers would)."""
    client.xgroup_create(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, id="0", mkstream=True)
    entry = client.xreadgroup(protocol.CONSUMER_GROUP, "ghost-0", {protocol.JOB_STREAM: ">"}, count=1)[0][1][0][0]
    for i in range(1, n):
        client.xclaim(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, f"ghost-{i}", 0, [entry])


def subprocess_env(cfg_env: dict[str, str]) -> dict[str, str]:
    """This environment without any worker setting, plus `cfg_env`: what a worker process under test reads."""
    env = {k: v for k, v in os.environ.items() if k not in settings.Settings.__dataclass_fields__}
    env.update({k: str(v) for k, v in cfg_env.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env
