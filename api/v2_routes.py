"""The Open Inference Protocol (KServe V2 REST) beside the course API, plus the Triton routes perf_analyzer uses.

Routes: server metadata and health, model metadata / readiness / Triton config, inference, and the repository
index. Every error is `{"error": "…"}` with its status: 400 for a request the model cannot take, 404 for an
unknown model or version, 503 + Retry-After when shed or when nothing can answer, 504 past REQUEST_TIMEOUT_S.
docs/protocol.md lists what is implemented and what is not.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

import admission
import fleet
import job_client
import settings
import v2_codec
import v2_content_coding
import v2_errors
import v2_infer
import v2_json_budget
import v2_models
import v2_stats
from v2_codec import V2Error
from v2_errors import error

log = logging.getLogger(__name__)
bp = Blueprint("v2", __name__, url_prefix="/v2")
v2_errors.register(bp)

SERVER_NAME, SERVER_VERSION = "resnet50-service", "2.0.0"
# Exactly what this server implements (docs/protocol.md); Triton's names.
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration", "model_repository", "statistics"]


# server -------------------------------------------------------------------------------------------------------
@bp.get("")
def server_metadata():
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": EXTENSIONS}


@bp.get("/health/live")
def live():
    """The API process answers (never touches Redis)."""
    return {"live": True}


@bp.get("/health/ready")
def ready():
    """Redis answers, jobs can be queued and at least one live worker has its model loaded."""
    r = job_client.client()
    unqueueable = job_client.why_unqueueable(r)
    if unqueueable:
        return error(unqueueable, 503, "v2_not_ready")
    if not fleet.ready_versions(r):
        return error("no live worker with its model loaded", 503, "v2_not_ready")
    return {"ready": True}


# models -------------------------------------------------------------------------------------------------------
def _resolve(name: str, version: str | None, queueing: bool = False) -> tuple[str, tuple[str, ...]]:
    """The version a request is about (the highest served when none is named) and all served versions; 404 for an
    unknown model or version, 503 when no worker is ready (fleet.require_ready). A request about to queue jobs
    (`queueing`) that names no version may get ("", ()) instead: its jobs wait in the shared queue as /predict's do."""
    if name != settings.MODEL_NAME:
        raise V2Error(f"unknown model {name!r}; this server serves {settings.MODEL_NAME!r}", 404)
    versions = fleet.require_ready(job_client.client(), queueing=queueing and version is None)
    if version is None:
        return (versions[-1] if versions else ""), versions
    if version not in versions:
        raise V2Error(f"unknown version {version!r} of model {name!r}; served: {', '.join(versions)}", 404)
    return version, versions


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None):
    _, versions = _resolve(name, version)
    return v2_models.metadata(versions, _classes(version))


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None):
    served, _ = _resolve(name, version)
    return {"name": name, "version": served, "ready": True}


@bp.get("/models/<name>/config")
@bp.get("/models/<name>/versions/<version>/config")
def model_config(name: str, version: str | None = None):
    served, _ = _resolve(name, version)
    models = fleet.ready_models(job_client.client())
    runtimes = models[served].runtimes if served in models else ()
    return v2_models.config(list(runtimes), _classes(version, models))


def _classes(version: str | None, models: dict[str, fleet.Served] | None = None) -> int | None:
    """How many classes `version` answers, or every served version when None: None when they differ (a rollout to
    a head of other classes) or none says. `models`: a fleet.ready_models() reading already taken."""
    models = fleet.ready_models(job_client.client()) if models is None else models
    counts = {models[v].classes for v in ([version] if version else models) if v in models}
    return counts.pop() if len(counts) == 1 else None


@bp.get("/models/stats")
@bp.get("/models/<name>/stats")
@bp.get("/models/<name>/versions/<version>/stats")
def model_stats(name: str | None = None, version: str | None = None):
    """Triton's statistics extension: every served version (or the one named), cumulative figures (v2_stats)."""
    served, versions = _resolve(name or settings.MODEL_NAME, version)
    return {"model_stats": v2_stats.model_stats(settings.MODEL_NAME, (served,) if version else versions)}


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None):
    waited = admission.queue_wait_s(request)
    if 0 < settings.MAX_QUEUE_WAIT_S < waited:
        log.warning("shed %s: waited %.2f s for a thread", request.path, waited)
        return error(admission.SHED_MESSAGE, 503, "shed")
    served, _ = _resolve(name, version, queueing=True)
    arrived = admission.arrival(request)
    try:
        response, computed = _infer(name, version)
    except Exception:
        if served:  # else no version to count it for
            v2_stats.observe_request(served, False, time.time() - arrived)
        raise
    # A request answered by two versions (it straddled a rolling switch) counts for the one it was resolved to.
    v2_stats.observe_request(served if served and len(computed) > 1 else computed[0], True, time.time() - arrived)
    return response


def _parsed_request() -> v2_codec.InferRequest:
    """The request's items. Its JSON is parsed inside the decode budget (v2_json_budget); the body (inflated, when
    it came compressed) and its binary part are freed on return, so a request holds one copy of its images while
    they wait for the decode budget and the workers."""
    limit = request.max_content_length or settings.MAX_CONTENT_LENGTH  # an inflated body: the same bound
    sent = v2_content_coding.inflate(request.get_data(cache=False), request.headers.get("Content-Encoding", ""), limit)
    text, binary = v2_codec.split_body(sent, request.headers.get("Inference-Header-Content-Length"))
    with v2_json_budget.reserved(text, admission.current_deadline()):
        return v2_codec.parse_request(v2_codec.parse_header(text), binary, settings.V2_MAX_BATCH)


def _infer(name: str, version: str | None) -> tuple[Response, list[str]]:
    """The response to an admitted inference request for a served model, and the versions that computed it."""
    parsed = _parsed_request()
    answers = v2_infer.run(parsed, version)
    computed = answered_by(answers.versions, version)
    started = time.perf_counter()
    outputs, binaries = [], []
    for output in parsed.outputs:
        if output.classification:
            data = [
                v2_codec.classification_strings(p, top, output.classification)
                for p, top in zip(answers.probabilities, answers.labels)
            ]
        else:
            data = answers.probabilities if output.name == "probabilities" else answers.heatmaps
        entry, payload = v2_codec.output_tensor(output, data)
        outputs.append(entry)
        binaries.append(payload)
    label = ",".join(computed)
    body = {"model_name": name, "model_version": label, **({"id": parsed.id} if parsed.id is not None else {})}
    body["outputs"] = outputs
    data, headers = v2_codec.encode_response(body, binaries)
    data, coding = v2_content_coding.compress(data, request.accept_encodings)
    if coding is not None:
        headers["Content-Encoding"] = coding
    v2_stats.observe_images(answers, time.perf_counter() - started)
    headers |= {"X-Model-Version": label, "Vary": "Accept-Encoding"}
    return Response(data, status=200, headers=headers), computed


def answered_by(versions: list[str], named: str | None) -> list[str]:
    """The versions that computed a response's items, each once, in order (the `model_version` "1,2" of a batch
    that straddled a rolling switch). A request that named a version gets answers of that version only: its jobs go to
    that version's stream; should a worker switch with one of them in hand, the answer of another version is a 503
    to retry, never a mislabelled answer."""
    found = list(dict.fromkeys(versions))
    if named is not None and found != [named]:
        others = ", ".join(v for v in found if v != named)
        message = f"version {named} was switched out while this request waited (answered by {others}); retry"
        raise V2Error(message, 503, "version_switched")
    return found
