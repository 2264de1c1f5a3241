"""The original app's contract, kept in this one module: `model_predict(image_name)` answers a
(prediction, score) pair. The work is done in prediction.py; the course's tests patch `views.model_predict` with
functions that answer a plain 2-tuple, which `as_classification` turns into what views read."""

from errors import BrokerUnavailable, InvalidImage, PredictError, PredictionFailed, PredictionTimeout, QueueFull
from images import Upload
from prediction import Classification, classify
from resnet_common.protocol import TOP_K_DEFAULT

__all__ = [
    "model_predict",
    "as_classification",
    "Classification",
    "PredictError",
    "QueueFull",
    "BrokerUnavailable",
    "PredictionTimeout",
    "InvalidImage",
    "PredictionFailed",
]


def model_predict(image_name: Upload, top_k: int = TOP_K_DEFAULT, explain: bool = False) -> Classification:
    """Classify a decoded upload (images.decode); the original name of the argument is kept."""
    return classify(image_name, top_k, explain)


def as_classification(answer: tuple) -> Classification:
    """A Classification as it is; a plain (prediction, score) pair as a Classification with no list."""
    return answer if isinstance(answer, Classification) else Classification(*answer)
