"""Hostile clients, API side: forged cache entries, costly images, oversized forms, JSON feedback errors, the
session cookie behind https, the request deadline (real redis-server where Redis is involved)."""

import io
import json
import time

import pytest
from PIL import Image

import admission
from app import MAX_URLENCODED_BYTES
import decode_budget
import images
import metrics
import middleware
import response_cache
from resnet_common import preprocess, protocol
from errors import DecodeBusy, InvalidImage, PredictionTimeout
from fakeworker import FakeWorker, ok_result
from testkit.images import encode, many_scan_jpeg, oriented_jpeg

MODEL = "a" * 64


def live_worker(r) -> None:
    r.zadd(protocol.HEARTBEATS_KEY, {"w-0": time.time()})
    r.hset(protocol.worker_key("w-0"), mapping={"ready": "1", "model": "ResNet50", "model_sha256": MODEL})


def count(result: str) -> float:
    return metrics.CACHE.labels(result=result)._value.get()


# --- forged response cache entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xfenot json",
        b"[1, 2, 3]",
        b'"a string"',
        b"42",
        json.dumps({"ok": True, "prediction": ["not", "a", "label"], "score": 0.5}).encode(),
        json.dumps({"ok": True, "prediction": "x", "score": "high", "top_k": []}).encode(),
        json.dumps({"ok": True, "prediction": "x", "score": 0.5, "top_k": [["x"]]}).encode(),
        json.dumps({"ok": False, "prediction": "forged", "score": 0.9, "top_k": []}).encode(),
        b"[" * 100_000,  # nested deeper than the interpreter's recursion limit
    ],
)
def test_forged_cache_entry_is_a_miss_not_a_500(redis_env, redis_server, photo, garbage):
    upload = images.decode(photo("coffee.jpg"), "abc.jpg")
    live_worker(redis_env)
    redis_env.set(
        protocol.cache_key(MODEL, response_cache.request_digest(upload.sha256, upload.mode, 5)), garbage, ex=60
    )
    invalid, hits = count("invalid"), count("hit")
    with FakeWorker(redis_server.port, ok_result) as worker:
        result = middleware.model_predict(upload)
    assert result.prediction == "tabby" and len(worker.jobs) == 1  # answered by the worker, not the entry
    assert count("invalid") == invalid + 1 and count("hit") == hits


def test_well_formed_cache_entry_is_still_a_hit(redis_env, photo, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.3")
    upload = images.decode(photo("coffee.jpg"), "abc.jpg")
    live_worker(redis_env)
    answer = {"ok": True, "prediction": "cached", "score": 0.5, "top_k": [["cached", 0.5]], "heatmap": [[0.1]]}
    redis_env.set(
        protocol.cache_key(MODEL, response_cache.request_digest(upload.sha256, upload.mode, 5)),
        json.dumps(answer),
        ex=60,
    )
    assert middleware.model_predict(upload).prediction == "cached"


# --- costly images -------------------------------------------------------------------------------------------------


def test_exif_transposition_is_counted_in_the_decode_budget():
    upright = Image.open(io.BytesIO(oriented_jpeg(600, 400, orientation=1)))
    turned = Image.open(io.BytesIO(oriented_jpeg(600, 400, orientation=6)))
    assert preprocess.decode_memory(upright) == 600 * 400 * 4
    assert preprocess.decode_memory(turned) == 2 * 600 * 400 * 4  # the decoded image + its transposed copy


def test_reserving_never_decodes_a_png():
    """A PNG's getexif() decodes every pixel: the reservation reads only what the header parsed."""
    out = io.BytesIO()
    Image.new("RGB", (300, 200)).save(out, "PNG")
    img = Image.open(io.BytesIO(out.getvalue()))
    assert preprocess.decode_memory(img) == 300 * 200 * 4
    assert img.tile  # still undecoded


def test_png_orientation_is_counted_too():
    exif = Image.Exif()
    exif[0x0112] = 8
    out = io.BytesIO()
    Image.new("RGB", (300, 200)).save(out, "PNG", exif=exif)
    reserved = []
    images.decode_budget.budget(256)  # the budget the decode uses
    pixels, _ = images._decode(out.getvalue(), "keras", reserved.append, lambda: sum(reserved), False)
    assert sum(reserved) == 2 * 300 * 200 * 4 and pixels.shape == (224, 224, 3)


def test_budget_holds_what_a_rotated_decode_really_peaks_at(monkeypatch):
    """A 6000x6000 orientation-6 JPEG holds two full-size copies (275 MiB), not one (137 MiB)."""
    data = oriented_jpeg(6000, 6000, orientation=6)
    monkeypatch.setenv("DECODE_MEMORY_MB", "250")
    with pytest.raises(InvalidImage, match="decode budget"):
        images.decode(data, "big.jpg")
    monkeypatch.setenv("DECODE_MEMORY_MB", "280")
    assert images.decode(data, "big.jpg").pixels.shape == (224, 224, 3)


def test_jpeg_with_thousands_of_scans_is_refused_before_decoding():
    data = many_scan_jpeg(2000)
    assert images.jpeg_scans(data) >= 2000
    started = time.monotonic()
    with pytest.raises(InvalidImage, match="scans"):
        images.decode(data, "scans.jpg")
    assert time.monotonic() - started < 1.0  # counted, never decoded


def test_only_a_header_that_reaches_a_sequential_frame_skips_the_scan_count():
    exif = Image.Exif()
    exif[0x0112] = 1
    baseline, with_exif, progressive = (
        encode(Image.new("RGB", (300, 200), (10, 120, 30)), "JPEG", **options)
        for options in ({}, {"exif": exif.tobytes()}, {"progressive": True})
    )
    assert images.sequential_jpeg(baseline) and images.sequential_jpeg(with_exif)
    assert not images.sequential_jpeg(progressive) and not images.sequential_jpeg(many_scan_jpeg(200, side=64))
    fill_byte = baseline[:2] + b"\xff" + baseline[2:]  # decoders skip it; this walk stops and the scans are counted
    assert not images.sequential_jpeg(fill_byte) and images.decode(fill_byte, "f.jpg").pixels.shape == (224, 224, 3)
    assert not images.sequential_jpeg(encode(Image.new("RGB", (8, 8)), "PNG"))


def test_ordinary_progressive_jpeg_is_decoded():
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 30)).save(out, "JPEG", progressive=True)
    assert 1 < images.jpeg_scans(out.getvalue()) <= images.MAX_JPEG_SCANS
    assert images.decode(out.getvalue(), "p.jpg").pixels.shape == (224, 224, 3)


def test_memory_error_during_decode_is_a_503_not_a_400(photo, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(preprocess, "load_rgb", out_of_memory)
    with pytest.raises(DecodeBusy):
        images.decode(photo("cat.jpg"), "cat.jpg")
    assert decode_budget.budget(256).used == 0  # its reservation was given back


def test_wait_for_decode_budget_ends_at_the_deadline(photo, monkeypatch):
    monkeypatch.setenv("DECODE_WAIT_S", "30")
    held = decode_budget.budget(256)
    held.acquire(held.capacity, 1)
    try:
        started = time.monotonic()
        with pytest.raises(DecodeBusy):
            images.decode(photo("cat.jpg"), "cat.jpg", deadline=time.time() + 0.3)
        assert time.monotonic() - started < 2  # the deadline, not DECODE_WAIT_S
    finally:
        held.release(held.capacity)


def test_deadline_runs_from_nginx_arrival_stamp(app, redis_env, photo, monkeypatch):
    """A request stamped as arrived 29.9 s ago has 0.1 s left of REQUEST_TIMEOUT_S, whatever it waited for."""
    monkeypatch.setenv("MAX_QUEUE_WAIT_S", "0")  # no shedding: only the deadline decides
    live_worker(redis_env)  # ready, but it never reads
    with app.test_request_context("/predict", headers={"X-Request-Start": f"t={time.time() - 29.9:.3f}"}):
        from flask import request

        assert admission.deadline(request) == pytest.approx(time.time() + 0.1, abs=0.05)
        started = time.monotonic()
        with pytest.raises(PredictionTimeout):
            middleware.model_predict(images.decode(photo("cat.jpg"), "cat.jpg"))
        assert time.monotonic() - started < 1.5
    with app.test_request_context("/predict"):
        from flask import request

        assert admission.deadline(request) == pytest.approx(time.time() + 30, abs=0.5)  # no stamp: from now


# --- forms ---------------------------------------------------------------------------------------------------------


def test_page_refuses_a_non_multipart_post_before_parsing_it(client):
    body = b"a=b&" * (4 * 2**20)
    started = time.monotonic()
    response = client.post("/", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "multipart/form-data" in response.get_data(as_text=True)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_feedback_body_over_16_kib_is_a_json_413(client, content_type):
    body = b"a=b&" * 2**20 if content_type.startswith("application") else b"--x\r\n" + b"x" * 2**20
    response = client.post("/feedback", data=body, content_type=content_type, headers={"Accept": "application/json"})
    assert response.status_code == 413 and set(response.get_json()) == {"success", "error"}  # feedback's own shape
    assert response.get_json()["success"] is False and "16384" in response.get_json()["error"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_feedback_answers_a_json_client_a_405_in_its_own_shape(client, method):
    response = client.open("/feedback", method=method, json={}, headers={"Accept": "application/json"})
    assert response.status_code == 405 and response.headers["Allow"]
    assert response.get_json() == {
        "success": False,
        "error": f"method {method} not allowed on /feedback; allowed: GET, HEAD, OPTIONS, POST",
    }


def test_form_with_many_parts_is_refused(client):
    parts = {f"f{i}": "1" for i in range(40)}  # under /feedback's 16 KiB
    response = client.post(
        "/feedback", data=parts, content_type="multipart/form-data", headers={"Accept": "application/json"}
    )
    assert response.status_code == 413 and response.get_json()["error"] == FORM_LIMIT_REASON


SMALL_FORMS_OVER_A_FORM_LIMIT = {
    "parts": {f"f{i}": "1" for i in range(40)},  # over MAX_FORM_PARTS, a few hundred bytes in all
    "text field": {"note": "x" * 600_000},  # over MAX_FORM_MEMORY_SIZE, far under MAX_CONTENT_LENGTH
}
FORM_LIMIT_REASON = "form has more than 32 parts, or a text field over 500000 bytes"


@pytest.mark.parametrize("form", SMALL_FORMS_OVER_A_FORM_LIMIT)
def test_a_small_form_over_a_form_limit_is_not_called_too_large(client, photo, form):
    """werkzeug answers a form limit with the 413 of a long body: the answer names the form limit instead."""
    data = SMALL_FORMS_OVER_A_FORM_LIMIT[form] | {"file": (io.BytesIO(photo()), "cat.jpg")}
    response = client.post("/predict", data=data, content_type="multipart/form-data")
    assert response.status_code == 413 and response.get_json()["error"] == FORM_LIMIT_REASON


def test_urlencoded_body_anywhere_is_bounded_before_parsing(app):
    """werkzeug reads a url-encoded body whole: every route caps it at MAX_URLENCODED_BYTES."""
    with app.test_request_context("/anything", method="POST", content_type="application/x-www-form-urlencoded"):
        from flask import request

        app.preprocess_request()
        assert request.max_content_length == MAX_URLENCODED_BYTES


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "{not json", "content_type": "application/json"},
        {"data": "[1, 2]", "content_type": "application/json"},
        {"json": {"prediction": "x" * 5000}},
        {"data": "[" * 10_000, "content_type": "application/json"},  # nested deeper than the recursion limit
    ],
)
def test_json_feedback_errors_are_json(client, kwargs):
    response = client.post("/feedback", **kwargs)
    assert response.status_code == 400 and response.is_json and response.get_json()["success"] is False


# --- session cookie ------------------------------------------------------------------------------------------------


def set_cookie(client, base_url: str = "http://localhost") -> str:
    response = client.post("/", data={}, base_url=base_url)  # no file part: a flash message, i.e. a session
    return response.headers.get("Set-Cookie", "")


def test_session_cookie_is_secure_behind_https(client):
    """gunicorn sets the scheme from nginx's X-Forwarded-Proto (its unix socket peer is trusted): https here."""
    cookie = set_cookie(client, "https://localhost")
    assert "session=" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_over_plain_http_is_not_secure(client):
    cookie = set_cookie(client)
    assert "session=" in cookie and "Secure" not in cookie
