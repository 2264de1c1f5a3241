"""Redis key names shared with the model service (docs/queue-protocol.md); keep identical to model/constants.py."""

JOB_STREAM = "ml:jobs"
CONSUMER_GROUP = "ml:workers"
RESULT_KEY_PREFIX = "ml:result:"
DEADLETTER_STREAM = "ml:deadletter"
HEARTBEATS_KEY = "ml:heartbeats"
WORKER_KEY_PREFIX = "ml:worker:"

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
