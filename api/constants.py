"""Redis key names shared with the model service (docs/queue-protocol.md); keep identical to model/constants.py."""

JOB_STREAM = "ml:jobs"
CONSUMER_GROUP = "ml:workers"
RESULT_KEY_PREFIX = "ml:result:"
DEADLETTER_STREAM = "ml:deadletter"
HEARTBEATS_KEY = "ml:heartbeats"
WORKER_KEY_PREFIX = "ml:worker:"
CACHE_KEY_PREFIX = "ml:cache:"  # + <model sha256>:<request digest>; string, EX CACHE_TTL_S (worker)
CACHE_INDEX_KEY = "ml:cache-index"  # zset key -> time stored: the worker trims oldest first
CACHE_SIZES_KEY = "ml:cache-sizes"  # hash key -> bytes counted
CACHE_BYTES_KEY = "ml:cache-bytes"  # total bytes counted, kept <= CACHE_MAX_MB
MODEL_CONTROL_KEY_PREFIX = "ml:model-control:"  # + <model name>: hash pin, unloaded (load/unload routes)

# Error codes a worker may put in a result's "error" field.
ERROR_INVALID_IMAGE = "invalid_image"
ERROR_INFERENCE_FAILED = "inference_failed"
ERROR_DEAD_LETTER = "dead_letter"

# Upload rules (the original app's contract).
ALLOWED_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif"})
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF")  # Pillow decoders tried; JPEG also opens phone MPO files
TOP_K_MIN, TOP_K_MAX, TOP_K_DEFAULT = 1, 10, 5


def result_key(job_id: str) -> str:
    """The list a worker RPUSHes one JSON result onto."""
    return f"{RESULT_KEY_PREFIX}{job_id}"


def worker_key(name: str) -> str:
    """The hash a worker refreshes with its status and metrics text."""
    return f"{WORKER_KEY_PREFIX}{name}"


def cache_key(model_sha256: str, digest: str) -> str:
    """A cached answer: the model file's hash and the request digest (response_cache.request_digest)."""
    return f"{CACHE_KEY_PREFIX}{model_sha256}:{digest}"


def model_control_key(name: str) -> str:
    """The live version policy of model `name` (docs/model-repository.md)."""
    return f"{MODEL_CONTROL_KEY_PREFIX}{name}"
