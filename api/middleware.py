"""`model_predict`: the one call views make to get a class for a stored upload (seed contract).

Reads the upload, sends its bytes through the queue (job_client) and turns the worker's JSON answer into a
`Prediction` — a (prediction, score) tuple that also carries `.top_k` — or a typed error from `errors`.
"""

import logging
import os
import time
from typing import Any
from collections.abc import Iterable

from werkzeug.security import safe_join

import constants
import job_client
import metrics
import settings
from errors import (BrokerUnavailable, InvalidImage, PredictError, PredictionFailed,
                    PredictionTimeout, QueueFull)

__all__ = ["model_predict", "Prediction", "PredictError", "QueueFull", "BrokerUnavailable", "PredictionTimeout",
           "InvalidImage", "PredictionFailed"]

log = logging.getLogger(__name__)


class Prediction(tuple):
    """(class_name, score) like the seed, plus `.top_k` = [(label, probability), …] and the worker's timings."""

    top_k: list[tuple[str, float]]
    info: dict[str, Any]

    def __new__(cls, prediction: str, score: float, top_k: Iterable = (), info: dict[str, Any] | None = None):
        self = super().__new__(cls, (prediction, score))
        self.top_k = [(str(label), float(prob)) for label, prob in top_k]
        self.info = info or {}
        return self

    @property
    def prediction(self) -> str:
        return self[0]

    @property
    def score(self) -> float:
        return self[1]


def model_predict(image_name: str, top_k: int = constants.TOP_K_DEFAULT) -> Prediction:
    """Classify the stored upload `image_name`; waits at most REQUEST_TIMEOUT_S."""
    deadline = time.time() + settings.REQUEST_TIMEOUT_S
    path = safe_join(settings.UPLOAD_FOLDER, image_name)
    if path is None or not os.path.isfile(path):
        raise InvalidImage("uploaded file not found")
    with open(path, "rb") as fh:
        image = fh.read()
    result = job_client.submit(image, image_name, top_k, deadline)
    return _to_prediction(result, top_k)


def _to_prediction(result: dict[str, Any], top_k: int) -> Prediction:
    """Map the worker's answer (queue-protocol.md, "Result") onto a Prediction or a typed error."""
    if not result.get("ok"):
        error, message = result.get("error"), result.get("message") or "prediction failed"
        log.warning("worker %s answered %s: %s", result.get("worker"), error, message)
        if error == constants.ERROR_INVALID_IMAGE:
            raise InvalidImage(message)
        raise PredictionFailed(f"{error}: {message}" if error else message)
    metrics.observe_job(result)
    pairs = result.get("top_k") or [(result["prediction"], result["score"])]
    info = {k: result.get(k) for k in ("worker", "batch_size", "queued_ms", "inference_ms")}
    return Prediction(result["prediction"], float(result["score"]), pairs[:top_k], info)
