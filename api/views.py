"""Routes of the original app's contract: the upload page, the JSON `/predict`, feedback and the uploaded image."""

import json
import logging
import os
import time

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_from_directory, url_for
from werkzeug.security import safe_join

import admission
import display_store
import explain
import feedback
import images
import metrics
import overlay
import settings
import uploads_gc
import utils
from errors import PredictError, StorageUnavailable
from resnet_common.protocol import TOP_K_DEFAULT, TOP_K_MAX, TOP_K_MIN
from middleware import as_classification, model_predict
from prediction import Classification
from responses import bad_request, predict_error, prefers_html, program_error, upload_too_large, wants_json

log = logging.getLogger(__name__)
bp = Blueprint("views", __name__)

MSG_NO_PART = "No file part"
MSG_NO_NAME = "No image selected for uploading"
MSG_BAD_EXT = "Allowed image types are -> png, jpg, jpeg, gif"
# Why a browser's page upload was refused before it could be classified: nginx sends it back to /?refused=<reason>,
# and so does the page when it sheds the upload itself.
MSG_REFUSED = {
    "too_large": lambda: f"File too large: {upload_too_large(settings.MAX_CONTENT_LENGTH)}",
    "rate_limited": lambda: "Too many uploads from this address; please wait a moment and try again",
    "busy": lambda: f"The service is at its limit right now; please try again in {settings.retry_after_s()} s",
    "internal_error": lambda: "The server could not take this upload just now; please try again in a moment",
}


def _decode_upload(file, stored: bool = False) -> images.Upload:
    """Read and decode the upload once (400 if it is not a usable image). A stored upload is named md5 +
    extension as originally (the user's name is never used as a path) and gets its display rendition from the
    same decode; /predict's is named only by its sha256, which the cache key needs anyway (one hash of a 12 MP
    photo instead of two). The wait for decode budget ends by the request's deadline."""
    data = utils.read_upload(file.stream)
    started = time.perf_counter()
    deadline = admission.deadline(request)
    if stored:
        upload = images.decode(data, utils.hashed_name(data, file.filename), deadline=deadline, display=True)
    else:
        upload = images.decode(data, None, extension=os.path.splitext(file.filename or "")[1], deadline=deadline)
    metrics.PREPROCESS.observe(time.perf_counter() - started)
    return upload


def _form_file():
    """The form's `file` part, or None. werkzeug buffers a part over 500 KB in a temporary file: a temporary folder
    that cannot take it (full, missing) is this host's fault, a 503 StorageUnavailable, not a 500."""
    try:
        return request.files.get("file")
    except OSError as exc:
        raise StorageUnavailable(f"the upload could not be buffered ({_reason(exc)}); please try again later") from None


def _save_upload(file) -> images.Upload:
    """The page flow: decode, then store the bytes for display on local disk (/predict stores nothing). The folder
    is pruned first, so on a full disk what the prune frees lets this upload in; a write that still fails is a 503."""
    upload = _decode_upload(file, stored=True)
    try:
        uploads_gc.maybe_prune(
            settings.UPLOAD_FOLDER,
            settings.UPLOAD_MAX_AGE_S,
            settings.UPLOAD_GC_INTERVAL_S,
            settings.UPLOAD_MAX_BYTES,
            grace_s=settings.REQUEST_TIMEOUT_S + 60,
        )
        utils.store_upload(settings.UPLOAD_FOLDER, upload.name, upload.data)
    except OSError as exc:
        raise StorageUnavailable(f"the upload could not be stored ({_reason(exc)}); please try again later") from None
    return upload


@bp.route("/", methods=["GET", "POST"])
def index():
    """Upload page; a POST classifies the image and shows it with its top-5, or flashes why it could not."""
    if request.method != "POST":  # GET, and HEAD (the same answer without a body)
        if (refused := MSG_REFUSED.get(request.args.get("refused", ""))) is not None:
            flash(refused(), "error")
        return render_template("index.html")
    if (shed := admission.check(request)) is not None:
        return redirect(url_for("views.index", refused="busy"), 303) if prefers_html() else shed
    if request.mimetype != "multipart/form-data":  # refused before anything parses the body
        got = request.mimetype or "no content type"
        return _page_refusal(f"{MSG_NO_PART}: expected multipart/form-data, got {got}", on_page=True)
    try:
        file = _form_file()
    except StorageUnavailable as exc:
        return _page_failure(exc)
    if file is None:
        return _page_refusal(MSG_NO_PART)
    if not file.filename:
        return _page_refusal(MSG_NO_NAME)
    if not utils.allowed_file(file.filename):
        return _page_refusal(MSG_BAD_EXT)
    try:
        upload = _save_upload(file)
        result = _classify(upload, TOP_K_DEFAULT, explain=True)
    except PredictError as exc:
        return _page_failure(exc)
    if upload.display is not None:  # only now, once the job was admitted and answered: other replicas serve it
        display_store.keep(upload.name, upload.display)
    prediction, score = result.prediction, float(result.score)
    top_k = result.ranked(TOP_K_DEFAULT)
    report = json.dumps({"filename": upload.name, "prediction": prediction, "score": score})
    context = {"prediction": prediction, "score": score, "top_k": top_k, "overlay": _overlay(upload.name, result)}
    return render_template("index.html", filename=upload.name, context=context, report=report)


@bp.post("/predict")
def predict():
    """JSON API: 200 {success, prediction, score[, top_k]}; bad input 400 with exactly three keys + X-Error."""
    if (shed := admission.check(request)) is not None:
        return shed
    if request.mimetype != "multipart/form-data":
        return bad_request(f"expected multipart/form-data, got {request.mimetype or 'no content type'}")
    try:
        file = _form_file()
    except StorageUnavailable as exc:
        return predict_error(exc)
    if file is None:
        return bad_request("missing form field 'file'")
    if not file.filename or not utils.allowed_file(file.filename):
        return bad_request("file name missing or extension not in png, jpg, jpeg, gif")
    raw_top_k = request.args.get("top_k", request.form.get("top_k"))
    top_k = None
    if raw_top_k is not None:
        top_k = _parse_top_k(raw_top_k)
        if top_k is None:
            return bad_request(f"top_k must be an integer from {TOP_K_MIN} to {TOP_K_MAX}")
    try:
        wanted = explain.parse_flag(request.args.get("explain", request.form.get("explain")))
    except ValueError as exc:
        return bad_request(str(exc))
    try:
        upload = _decode_upload(file)  # the pixels go to the queue; nothing is written to disk
        result = _classify(upload, top_k or TOP_K_DEFAULT, explain=wanted)
        heatmap = explain.heatmap_of(result) if wanted else None
    except PredictError as exc:
        return predict_error(exc)
    body = {"success": True, "prediction": result.prediction, "score": float(result.score)}
    if top_k:
        body["top_k"] = [[label, float(prob)] for label, prob in result.ranked(top_k)]
    if heatmap is not None:
        body["heatmap"] = heatmap
    if result.model_version:  # which model version answered; the JSON stays the original contract
        return body, 200, {"X-Model-Version": result.model_version}
    return body


def _page_failure(exc: PredictError):
    """The page's answer to a failed upload: back to the form, with the reason as a flash message."""
    metrics.count_error(exc.kind)
    log.info("page upload failed (%s): %s", exc.kind, exc)
    return _page_refusal(f"Could not classify this image: {exc}", exc.status, exc.retry_later)


def _page_refusal(message: str, status: int = 400, retry_later: bool = False, on_page: bool = False):
    """A refused page upload. A program that ranks JSON above HTML (responses.wants_json) gets `{"error": message}`
    with `status` (and Retry-After when it should retry later), not a page; a browser gets the message flashed,
    on the page answering `status` (`on_page`) or after a redirect back to the form."""
    if wants_json():
        return program_error(status, message, retry_later)
    flash(message, "error")
    return (render_template("index.html"), status) if on_page else redirect(url_for("views.index"))


def _classify(upload: images.Upload, top_k: int, explain: bool) -> Classification:
    """The one call to the course's model_predict (looked up here, where its tests patch it)."""
    return as_classification(model_predict(upload, top_k=top_k, explain=explain))


def _overlay(name: str, result: Classification) -> dict | None:
    """url_for arguments of the page's heatmap overlay, or None when the answer carries no (valid) heatmap."""
    heatmap = result.heatmap
    if heatmap is None or not explain.valid(heatmap):
        return None
    return overlay.overlay_query(heatmap, overlay.display_size(os.path.join(settings.UPLOAD_FOLDER, name)))


def _reason(exc: OSError) -> str:
    """What went wrong with a file, without its path (the user needs the cause, not this host's layout)."""
    return exc.strerror or type(exc).__name__


def _parse_top_k(raw: str) -> int | None:
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        return None
    return value if TOP_K_MIN <= value <= TOP_K_MAX else None


@bp.route("/feedback", methods=["GET", "POST"])
def feedback_view():
    """Store a "Report incorrect answer" row; always 200 unless an API-style post sends over-long fields."""
    if request.method != "POST":  # GET and HEAD
        return render_template("index.html")
    request.max_content_length = feedback.MAX_BODY_BYTES  # a few short fields (nginx enforces it first)
    body = request.get_json(silent=True) if request.is_json else None
    api_style = wants_json() or request.is_json or ("report" not in request.form and bool(request.form))
    if request.is_json and not isinstance(body, dict):
        metrics.count_error("feedback_rejected")
        return {"success": False, "error": "body is not a JSON object"}, 400
    try:
        values = feedback.parse(request.form, body)
    except feedback.FeedbackError as exc:
        metrics.count_error("feedback_rejected")
        if api_style:
            return {"success": False, "error": str(exc)}, 400
        flash(f"Feedback not stored: {exc}", "error")
        return render_template("index.html")
    if values is not None:
        try:
            feedback.store(values)
        except OSError as exc:
            message = f"the report could not be stored ({_reason(exc)}); please try again later"
            log.warning("feedback not stored: %s", exc)
            metrics.count_error(StorageUnavailable.kind)
            if api_style:
                return {"success": False, "error": message}, StorageUnavailable.status
            flash(f"Feedback not stored: {message}", "error")
            return render_template("index.html"), StorageUnavailable.status
    if api_style:
        return {"success": True, "stored": values is not None}
    if values is not None:
        flash("Thank you: the answer was reported as incorrect.", "info")
    return render_template("index.html")


@bp.get("/display/<filename>")
def display_image(filename: str):
    """Serve a stored upload; anything outside UPLOAD_FOLDER or not an image name is a 404."""
    if "\\" in filename or filename.startswith(".") or not utils.allowed_file(filename):
        abort(404)
    if os.path.isfile(safe_join(settings.UPLOAD_FOLDER, filename) or ""):
        return send_from_directory(settings.UPLOAD_FOLDER, filename, max_age=3600)
    data = display_store.fetch(filename)  # the display rendition another replica stored (always a JPEG)
    if data is None:
        abort(404)
    response = Response(data, mimetype=display_store.MIMETYPE)
    response.cache_control.max_age = 3600
    return response
