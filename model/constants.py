"""The worker's own fixed values. The queue protocol's names, shared with the API, are in resnet_common.protocol."""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    """How the worker finished a job (metrics label); expired jobs get no answer at all."""

    OK = "ok"
    INVALID_IMAGE = "invalid_image"
    INFERENCE_FAILED = "inference_failed"
    DEAD_LETTER = "dead_letter"
    EXPIRED = "expired"
