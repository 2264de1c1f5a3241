"""Names shared with the API through Redis (docs/queue-protocol.md). Kept identical to api/constants.py."""

from __future__ import annotations

from enum import Enum

# Redis keys
JOB_STREAM = "ml:jobs"
CONSUMER_GROUP = "ml:workers"
RESULT_KEY_PREFIX = "ml:result:"
DEADLETTER_STREAM = "ml:deadletter"
HEARTBEATS_KEY = "ml:heartbeats"
WORKER_KEY_PREFIX = "ml:worker:"
CACHE_KEY_PREFIX = "ml:cache:"  # + <model sha256>:<request digest>; string, EX CACHE_TTL_S
CACHE_INDEX_KEY = "ml:cache-index"  # zset key -> time stored: trimmed oldest first
CACHE_SIZES_KEY = "ml:cache-sizes"  # hash key -> bytes counted
CACHE_BYTES_KEY = "ml:cache-bytes"  # total bytes counted, kept <= CACHE_MAX_MB
MODEL_CONTROL_KEY_PREFIX = "ml:model-control:"  # + <model name>: hash pin, unloaded (load/unload routes)

# Limits of a job's top_k field (api/constants.py holds the same)
TOP_K_MIN, TOP_K_MAX = 1, 10


class ErrorKind(str, Enum):
    """The `error` field of a failed result."""

    INVALID_IMAGE = "invalid_image"
    INFERENCE_FAILED = "inference_failed"
    DEAD_LETTER = "dead_letter"


class Outcome(str, Enum):
    """How the worker finished a job (metrics label); expired jobs get no answer at all."""

    OK = "ok"
    INVALID_IMAGE = "invalid_image"
    INFERENCE_FAILED = "inference_failed"
    DEAD_LETTER = "dead_letter"
    EXPIRED = "expired"


# Redis outage handling: bounded exponential back-off between reconnect attempts
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0


def result_key(job_id: str) -> str:
    return f"{RESULT_KEY_PREFIX}{job_id}"


def worker_key(name: str) -> str:
    return f"{WORKER_KEY_PREFIX}{name}"


def cache_key(model_sha256: str, digest: str) -> str:
    return f"{CACHE_KEY_PREFIX}{model_sha256}:{digest}"


def model_control_key(name: str) -> str:
    """The live version policy of model `name` (docs/model-repository.md)."""
    return f"{MODEL_CONTROL_KEY_PREFIX}{name}"
