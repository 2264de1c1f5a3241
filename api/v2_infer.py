"""One Open Inference Protocol inference: a parsed request → N jobs in the shared queue → the response outputs.

Each image (or tensor) of the batch is its own job, exactly as `/predict` would queue it, so the workers batch
them with everybody else's; the answers come back in order. A BYTES `image` is decoded by `images.decode` (same
checks, budget, PREPROCESS mode and Keras parity as /predict); an FP32 `input` goes to the worker as it is
(job field `input`). Every job asks for the whole probability vector (`probs`), and for the heatmap only when
the `heatmap` output is requested. The response cache applies per item, keyed by the item's bytes.

A request that names a version queues its jobs on that version's stream (protocol.version_stream), which only
workers serving it read; the others go to the shared stream, which every worker reads.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import admission
import explain
import fleet
import images
import job_client
import metrics
import request_ids
import settings
import v2_models
from errors import InvalidImage, PredictionFailed, VersionGone
from resnet_common import protocol
from v2_codec import InferRequest

if TYPE_CHECKING:  # numpy loads on the first inference, not when a gunicorn worker boots
    import numpy as np

TENSOR_MODE = "tensor"  # the `preprocess` field of a job carrying an FP32 `input`


class Answers(NamedTuple):
    """The outputs of one request's items, in order, the model version that computed each, and for the statistics
    each item's answer as it came (worker or cache) and the seconds its input took to prepare."""

    probabilities: np.ndarray  # [N, classes of the version that answered]
    labels: list[list[str]]  # the top labels of each item, best first
    heatmaps: np.ndarray | None  # [N, 7, 7] when asked
    versions: list[str]
    results: list[dict[str, Any]]
    input_seconds: list[float]


def item_digest(item_sha256: str, mode: str, top_k: int, heatmap: bool) -> str:
    """The cache digest of one V2 item; distinct from /predict's (its answers carry the whole vector)."""
    return hashlib.sha256(f"v2|{item_sha256}|{mode}|{int(top_k)}|{int(heatmap)}".encode()).hexdigest()


def run(request: InferRequest, version: str | None = None) -> Answers:
    """Every item's answer, computed by `version` when one is named, or a typed error."""
    import numpy as np

    heatmap = any(o.name == "heatmap" for o in request.outputs)
    top_k = max([o.classification for o in request.outputs] + [1])
    jobs, digests, input_seconds = [], [], []
    deadline = admission.current_deadline()  # from the request's arrival: decode waits and queueing count
    for item in request.items:
        started = time.perf_counter()
        fields, sha256, mode = _job(request.input_name, item, deadline)
        input_seconds.append(time.perf_counter() - started)
        fields |= {"top_k": str(top_k), "probs": "1", **({"explain": "1"} if heatmap else {})}
        jobs.append(fields)
        digests.append(item_digest(sha256, mode, top_k, heatmap) if settings.RESPONSE_CACHE else None)
    stream = protocol.JOB_STREAM if version is None else protocol.version_stream(version)
    served = None if version is None else lambda: version in fleet.ready_versions(job_client.client())
    results = job_client.submit_many(jobs, digests, deadline, stream, served, request_ids.current())
    probs, labels, maps = [], [], []
    for result in results:
        p, top, cam = _answer(result, heatmap)
        probs.append(p)
        labels.append(top)
        maps.append(cam)
    versions = [str(result.get("model_version") or protocol.DEFAULT_VERSION) for result in results]
    if len({p.size for p in probs}) > 1:  # a rolling switch to a head of other classes, mid-request
        raise VersionGone(
            f"versions {', '.join(sorted(set(versions)))} answered this request with different classes; retry"
        )
    heatmaps = np.asarray(maps, dtype=np.float32) if heatmap else None
    return Answers(np.stack(probs), labels, heatmaps, versions, results, input_seconds)


def _job(input_name: str, item: Any, deadline: float) -> tuple[dict[str, Any], str, str]:
    """The payload fields of one item's job, its content hash and its preprocessing mode."""
    import numpy as np

    if input_name == "image":
        started = time.perf_counter()
        upload = images.decode(item, None, deadline=deadline)
        metrics.PREPROCESS.observe(time.perf_counter() - started)
        fields = {"pixels": upload.pixels.tobytes(), "preprocess": upload.mode, "filename": f"v2:{upload.name}"}
        return fields, upload.sha256, upload.mode
    raw = np.ascontiguousarray(item, dtype="<f4").tobytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    return {"input": raw, "preprocess": TENSOR_MODE, "filename": f"v2:{sha256[:32]}"}, sha256, TENSOR_MODE


def _answer(result: dict[str, Any], heatmap: bool) -> tuple[np.ndarray, list[str], Any]:
    """One worker answer → (probabilities, labels of its top_k, heatmap rows or None)."""
    import numpy as np

    if not result.get("ok"):
        error, message = result.get("error"), result.get("message") or "prediction failed"
        if error == "invalid_image":
            raise InvalidImage(message)
        raise PredictionFailed(f"{error}: {message}" if error else message)
    if not result.get("cached"):
        metrics.observe_job(result)
    try:
        probs = np.frombuffer(base64.b64decode(result["probs"], validate=True), dtype="<f4")
    except (KeyError, TypeError, ValueError):
        raise PredictionFailed("the worker answered without the probability vector (upgrade the workers)") from None
    if probs.size == 0:
        raise PredictionFailed("the worker answered an empty probability vector")
    labels = [str(label) for label, _ in result.get("top_k") or ()]
    cam = None
    if heatmap:
        cam = result.get("heatmap")
        if cam is None:
            explain.heatmap_of(None)  # raises /predict's message: the served model cannot explain
        if not explain.valid(cam):
            raise PredictionFailed("the worker answered with a malformed heatmap")
        size = v2_models.HEATMAP_SIZE
        if len(cam) != size or len(cam[0]) != size:
            raise PredictionFailed(f"the worker answered a heatmap that is not {size}x{size}")
    return probs, labels, cam
