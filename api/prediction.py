"""Classify a decoded upload through the queue: the response cache first, else one job for a worker; the worker's
JSON answer (queue-protocol.md, "Result") becomes a `Classification` or a typed error from `errors`."""

import logging
from typing import Any, NamedTuple

import admission
import fleet
import job_client
import metrics
import request_ids
import response_cache
import settings
from errors import InvalidImage, PredictionFailed
from images import Upload
from resnet_common.protocol import ErrorKind

log = logging.getLogger(__name__)


class Classification(NamedTuple):
    """The original app's (class_name, score) pair, plus `top_k` = ((label, probability), …) best first and,
    when asked for, `heatmap` (the class activation map: rows of floats in [0, 1]; explain.py)."""

    prediction: str
    score: float
    top_k: tuple[tuple[str, float], ...] = ()
    heatmap: list[list[float]] | None = None
    model_version: str = ""  # the repository version that computed it (the X-Model-Version header)

    def ranked(self, k: int) -> list[tuple[str, float]]:
        """The k best (label, probability) pairs; the pair itself when no list came with it."""
        return list(self.top_k or ((self.prediction, self.score),))[:k]


def classify(upload: Upload, top_k: int, explain: bool = False) -> Classification:
    """Waits at most REQUEST_TIMEOUT_S from the request's arrival. `explain` also asks the worker for the heatmap of the predicted class
    (from the same inference)."""
    fleet.require_ready(job_client.client(), queueing=True)
    # Inside a request the deadline runs from its arrival at nginx: the wait for a thread and for decode budget count.
    deadline = admission.current_deadline()
    digest = (
        response_cache.request_digest(upload.sha256, upload.mode, top_k, explain) if settings.RESPONSE_CACHE else None
    )
    result = job_client.submit(
        upload.pixels.tobytes(),
        upload.name,
        top_k,
        deadline,
        upload.mode,
        digest,
        explain=explain,
        request_id=request_ids.current(),
    )
    return _to_classification(result, top_k)


def _to_classification(result: dict[str, Any], top_k: int) -> Classification:
    if not result.get("ok"):
        error, message = result.get("error"), result.get("message") or "prediction failed"
        log.warning("worker %s answered %s: %s", result.get("worker"), error, message)
        if error == ErrorKind.INVALID_IMAGE:
            raise InvalidImage(message)
        raise PredictionFailed(f"{error}: {message}" if error else message)
    if not result.get("cached"):  # a cached answer's timings are those of the job that computed it
        metrics.observe_job(result)
    pairs = tuple((str(label), float(prob)) for label, prob in result.get("top_k") or ())
    return Classification(
        result["prediction"],
        float(result["score"]),
        pairs[:top_k],
        result.get("heatmap"),
        str(result.get("model_version") or ""),
    )
