"""`model_predict`: the one call views make to get a class for an upload (the original app's contract).

Takes the upload already decoded (an `images.Upload`: its name plus its 224×224×3 pixels) or, as originally,
the name of a stored upload (read and decoded here). Sends the pixels through the queue (job_client), asking the
response cache first, and turns the worker's JSON answer into a `Classification` — the (prediction, score) pair
that also carries `.top_k` — or a typed error from `errors`.
"""

import logging
import os
import time
from typing import Any, NamedTuple

from werkzeug.security import safe_join

import constants
import images
import job_client
import metrics
import response_cache
import settings
from errors import BrokerUnavailable, InvalidImage, PredictError, PredictionFailed, PredictionTimeout, QueueFull

__all__ = [
    "model_predict",
    "Classification",
    "PredictError",
    "QueueFull",
    "BrokerUnavailable",
    "PredictionTimeout",
    "InvalidImage",
    "PredictionFailed",
]

log = logging.getLogger(__name__)


class Classification(NamedTuple):
    """The original app's (class_name, score) pair, plus `top_k` = ((label, probability), …) best first and,
    when asked for, `heatmap` (the class activation map: rows of floats in [0, 1]; explain.py).

    A plain 2-tuple (as the original app's tests patch in) becomes one with `Classification(*pair)`.
    """

    prediction: str
    score: float
    top_k: tuple[tuple[str, float], ...] = ()
    heatmap: list[list[float]] | None = None
    model_version: str = ""  # the repository version that computed it (the X-Model-Version header)

    def ranked(self, k: int) -> list[tuple[str, float]]:
        """The k best (label, probability) pairs; the pair itself when no list came with it."""
        return list(self.top_k or ((self.prediction, self.score),))[:k]


def model_predict(image_name: str, top_k: int = constants.TOP_K_DEFAULT, explain: bool = False) -> Classification:
    """Classify an upload: an `images.Upload`, or the name of a stored one; waits at most REQUEST_TIMEOUT_S.
    `explain` also asks the worker for the heatmap of the predicted class (from the same inference)."""
    deadline = time.time() + settings.REQUEST_TIMEOUT_S
    upload = image_name if isinstance(image_name, images.Upload) else _read_stored(image_name)
    digest = (
        response_cache.request_digest(upload.sha256, upload.mode, top_k, explain) if settings.RESPONSE_CACHE else None
    )
    result = job_client.submit(
        upload.pixels.tobytes(), str(upload), top_k, deadline, upload.mode, digest, explain=explain
    )
    return _to_classification(result, top_k)


def _read_stored(image_name: str) -> "images.Upload":
    path = safe_join(settings.UPLOAD_FOLDER, image_name)
    if path is None or not os.path.isfile(path):
        raise InvalidImage("uploaded file not found")
    with open(path, "rb") as fh:
        return images.decode(fh.read(), image_name)


def _to_classification(result: dict[str, Any], top_k: int) -> Classification:
    """Map the worker's answer (queue-protocol.md, "Result") onto a Classification or a typed error."""
    if not result.get("ok"):
        error, message = result.get("error"), result.get("message") or "prediction failed"
        log.warning("worker %s answered %s: %s", result.get("worker"), error, message)
        if error == constants.ERROR_INVALID_IMAGE:
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
