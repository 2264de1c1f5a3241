"""Typed failures of a prediction; each knows its HTTP status and its metric label, so views stay a lookup."""


class PredictError(Exception):
    """Base class: something stopped a prediction; `str(exc)` is safe to show to the user."""

    status = 503
    kind = "prediction_failed"
    retry_later = False  # a 503 the client should retry after a moment: its answer carries Retry-After


class InvalidImage(PredictError):
    """The bytes are not an image we accept (empty, truncated, not an image, too many pixels)."""

    status = 400
    kind = "invalid_image"


class QueueFull(PredictError):
    """Backpressure: the job stream is at MAX_QUEUE_DEPTH; the client should retry later."""

    status = 503
    kind = "queue_full"
    retry_later = True


class NoWorker(PredictError):
    """No worker is ready to answer, and the pool does not scale from zero (SCALE_FROM_ZERO): retry later."""

    status = 503
    kind = "no_worker"
    retry_later = True


class DecodeBusy(QueueFull):
    """The process's decode memory budget stayed full (large images in flight); retry later (Retry-After)."""

    kind = "decode_busy"


class BrokerUnavailable(PredictError):
    """Redis could not be reached or answered with an error."""

    status = 503
    kind = "broker_unavailable"


class PredictionTimeout(PredictError):
    """No worker answered before the request's deadline."""

    status = 504
    kind = "timeout"


class PredictionFailed(PredictError):
    """A worker answered with an error (inference failed, job dead-lettered)."""

    status = 503
    kind = "prediction_failed"


class StorageUnavailable(PredictError):
    """A file could not be written (a full disk, a read-only volume): a fault of this host, not of the request."""

    status = 503
    kind = "storage_unavailable"


class VersionGone(PredictError):
    """No worker serves the model version a request named any more (a rolling switch, an unload): retry later."""

    status = 503
    kind = "version_switched"
    retry_later = True
