"""The queue protocol's names and values, shared by the API and the workers through Redis (docs/queue-protocol.md)."""

from __future__ import annotations

from enum import Enum, StrEnum

# Redis keys
JOB_STREAM = "ml:jobs"
VERSION_STREAM_PREFIX = "ml:jobs:v"  # + <version>: jobs of requests that named a model version (version_stream)
CONSUMER_GROUP = "ml:workers"
RESULT_KEY_PREFIX = "ml:result:"
DEADLETTER_STREAM = "ml:deadletter"
HEARTBEATS_KEY = "ml:heartbeats"
WORKER_KEY_PREFIX = "ml:worker:"
CACHE_KEY_PREFIX = "ml:cache:"  # + <model sha256>:<request digest>; string, EX CACHE_TTL_S (written by workers)
CACHE_INDEX_KEY = "ml:cache-index"  # zset key -> time stored: workers trim oldest first
CACHE_SIZES_KEY = "ml:cache-sizes"  # hash key -> bytes counted
CACHE_BYTES_KEY = "ml:cache-bytes"  # total bytes counted, kept <= CACHE_MAX_MB
MODEL_CONTROL_KEY_PREFIX = "ml:model-control:"  # + <model name>: hash pin, unloaded (load/unload routes)
SET_ASIDE_KEY_PREFIX = "ml:set-aside:"  # + <key>: a key of ours found holding another type of value, moved here
SET_ASIDE_TTL_S = 7 * 24 * 3600  # how long such a copy is kept for a human to look at

# A job's top_k field: the API checks a client's value against these limits, a worker clamps it into them and
# uses the default for a job that carries none.
TOP_K_MIN, TOP_K_MAX, TOP_K_DEFAULT = 1, 10, 5

# The model version of a worker that serves a folder outside a repository (MODEL_DIR), which reports none.
DEFAULT_VERSION = "1"


class Runtime(StrEnum):
    """What runs a worker's ONNX file (the workers' RUNTIME setting): each worker reports it in its heartbeat's
    `runtime` field, and the API's protocol routes name it as the model's backend."""

    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


DEFAULT_RUNTIME = Runtime.ONNXRUNTIME  # a worker's RUNTIME unless set; a heartbeat without `runtime` means it


class ErrorKind(str, Enum):
    """The `error` field of a failed result."""

    INVALID_IMAGE = "invalid_image"
    INFERENCE_FAILED = "inference_failed"
    DEAD_LETTER = "dead_letter"


def result_key(job_id: str) -> str:
    """The list a worker RPUSHes one JSON result onto."""
    return f"{RESULT_KEY_PREFIX}{job_id}"


def worker_key(name: str) -> str:
    """The hash a worker refreshes with its status and metrics text."""
    return f"{WORKER_KEY_PREFIX}{name}"


def cache_key(model_sha256: str, digest: str) -> str:
    """A cached answer: the model file's hash and the request digest the job carries."""
    return f"{CACHE_KEY_PREFIX}{model_sha256}:{digest}"


def model_control_key(name: str) -> str:
    """The live version policy of model `name` (docs/model-repository.md)."""
    return f"{MODEL_CONTROL_KEY_PREFIX}{name}"


def set_aside_key(key: str) -> str:
    """Where a worker moves `key` when it holds another type of value than this protocol gives it (the last such
    value only: a later one replaces it)."""
    return f"{SET_ASIDE_KEY_PREFIX}{key}"


def version_stream(version: str) -> str:
    """The stream of jobs that only workers serving `version` may compute (a request named it); every worker reads
    the shared JOB_STREAM and the stream of the version it serves, in the same consumer group."""
    return f"{VERSION_STREAM_PREFIX}{version or DEFAULT_VERSION}"
