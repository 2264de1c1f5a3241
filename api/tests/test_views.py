"""Page and /predict behaviour with model_predict patched (pure: no Redis, no worker)."""

import io
import json
import os
import re
import tempfile

from unittest.mock import patch

import pytest

import errors
import views
from testkit.images import good_images, png_bomb
from middleware import Classification

THREE_KEYS = {"success": False, "prediction": None, "score": None}
TOP5 = [("tabby", 0.61), ("tiger_cat", 0.2), ("Egyptian_cat", 0.1), ("lynx", 0.05), ("Persian_cat", 0.01)]


@pytest.fixture
def calls(monkeypatch):
    """Patch views.model_predict with a fake that records its arguments."""
    seen = []

    def fake(image_name, top_k=5, explain=False):
        seen.append((image_name, top_k))
        return Classification("tabby", 0.61, tuple(TOP5[:top_k]))

    monkeypatch.setattr(views, "model_predict", fake)
    return seen


def upload(data: bytes, name: str = "cat.jpg", field: str = "file"):
    return {field: (io.BytesIO(data), name)}


def flashes(client) -> list[str]:
    with client.session_transaction() as session:
        return [message for _, message in session.get("_flashes", [])]


# ---- the page ----------------------------------------------------------------------------------------------


def test_index_get(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.data and b'name="file"' in response.data


@pytest.mark.parametrize("path", ["/", "/feedback"])
def test_head_of_a_page_is_its_get_without_a_body(client, path):
    """A load balancer's check or `curl -I`: the page's answer, never the upload's 400."""
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200 and head.data == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"] == "text/html; charset=utf-8"
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "No file part"),
        ({"file": (io.BytesIO(b""), "")}, "No image selected for uploading"),
        ({"file": (io.BytesIO(b"x"), "cat.bmp")}, "Allowed image types are -> png, jpg, jpeg, gif"),
        ({"image": (io.BytesIO(b"x"), "cat.jpg")}, "No file part"),
    ],
)
def test_index_post_rejections_redirect_with_flash(client, calls, data, message):
    response = client.post("/", data=data, content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
    assert flashes(client) == [message]
    assert calls == []


JSON_FIRST = {"Accept": "application/json, text/html;q=0.5"}


@pytest.mark.parametrize(
    "data, content_type, message",
    [
        ({}, "multipart/form-data", "No file part"),
        (
            {"file": (io.BytesIO(b"x"), "cat.bmp")},
            "multipart/form-data",
            "Allowed image types are -> png, jpg, jpeg, gif",
        ),
        (b"file=cat.jpg", "application/x-www-form-urlencoded", "expected multipart/form-data"),
    ],
)
def test_index_post_rejections_are_json_for_a_program_that_asks_for_json(client, calls, data, content_type, message):
    response = client.post("/", data=data, content_type=content_type, headers=JSON_FIRST)
    assert response.status_code == 400 and response.is_json and message in response.get_json()["error"]
    assert flashes(client) == [] and calls == []


def test_index_post_failures_are_json_with_their_status_for_a_program_that_asks_for_json(client, monkeypatch, photo):
    def fail(name, top_k=5, explain=False):
        raise errors.NoWorker("no worker is ready to answer; retry later")

    monkeypatch.setattr(views, "model_predict", fail)
    monkeypatch.setenv("RETRY_AFTER_S", "2")
    response = client.post("/", data=upload(photo()), content_type="multipart/form-data", headers=JSON_FIRST)
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert response.get_json() == {"error": "Could not classify this image: no worker is ready to answer; retry later"}
    app_client = client.application.test_client()  # the same refusal for a browser: back to the form, flashed
    page = app_client.post("/", data=upload(photo()), content_type="multipart/form-data")
    assert page.status_code == 302 and flashes(app_client)[0].startswith("Could not classify this image: no worker")


def test_index_post_valid_image_shows_result(client, calls, photo, isolated_dirs):
    data = photo("cat.jpg")
    response = client.post("/", data=upload(data, "My Cat.JPG"), content_type="multipart/form-data")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    stored = calls[0][0].name
    assert re.fullmatch(r"[0-9a-f]{32}\.JPG", stored) and calls[0][1] == 5
    assert (isolated_dirs / "uploads" / stored).read_bytes() == data
    assert f'src="/display/{stored}"' in page
    assert 'id="prediction">tabby<' in page and 'id="score">0.6100<' in page
    assert page.count("<meter") == 5 and "Egyptian_cat" in page
    assert 'action="/feedback"' in page and 'name="report"' in page and "Report incorrect answer" in page
    report = re.search(r'name="report" value="([^"]*)"', page).group(1).replace("&#34;", '"')
    assert json.loads(report) == {"filename": stored, "prediction": "tabby", "score": 0.61}


def test_index_copes_with_a_plain_two_tuple(client, monkeypatch, photo):
    monkeypatch.setattr(views, "model_predict", lambda name, top_k=5, explain=False: ("Eskimo_dog", 0.9346))
    page = client.post("/", data=upload(photo()), content_type="multipart/form-data").get_data(as_text=True)
    assert "Eskimo_dog" in page and "0.9346" in page and page.count("<meter") == 1


def test_page_escapes_labels(client, monkeypatch, photo):
    monkeypatch.setattr(views, "model_predict", lambda name, top_k=5, explain=False: ("<script>x</script>", 0.5))
    page = client.post("/", data=upload(photo()), content_type="multipart/form-data").get_data(as_text=True)
    assert "<script>x" not in page and "&lt;script&gt;x" in page


@pytest.mark.parametrize("case", ["empty", "text", "truncated", "bomb"])
def test_index_bad_content_flashes_never_500(client, calls, photo, case):
    data = {"empty": b"", "text": b"just text", "truncated": photo()[:5000], "bomb": png_bomb()}[case]
    response = client.post("/", data=upload(data, "x.png"), content_type="multipart/form-data")
    assert response.status_code == 302
    assert flashes(client)[0].startswith("Could not classify this image")
    assert calls == []


@pytest.mark.parametrize(
    "exc",
    [
        errors.QueueFull("queue is full"),
        errors.BrokerUnavailable("down"),
        errors.PredictionTimeout("slow"),
        errors.PredictionFailed("boom"),
        errors.InvalidImage("bad"),
    ],
)
def test_index_model_errors_flash(client, monkeypatch, photo, exc):
    def fail(name, top_k=5, explain=False):
        raise exc

    monkeypatch.setattr(views, "model_predict", fail)
    response = client.post("/", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 302 and str(exc) in flashes(client)[0]


def test_index_unexpected_error_is_not_a_500(client, monkeypatch, photo):
    def crash(name, top_k=5, explain=False):
        raise KeyError("bug")

    monkeypatch.setattr(views, "model_predict", crash)
    response = client.post("/", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 302 and flashes(client) == ["Something went wrong; please try again."]


def test_index_too_large_flashes(app, photo):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    client = app.test_client()
    response = client.post("/", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 302 and flashes(client)[0].startswith("File too large")


def test_index_too_large_is_json_for_a_program_that_asks_for_json(app, photo):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = app.test_client().post("/", data=upload(photo()), content_type="multipart/form-data", headers=JSON_FIRST)
    assert response.status_code == 413 and response.get_json() == {
        "error": "upload larger than the limit of 1000 bytes"
    }


def test_index_form_over_a_form_limit_flashes_why(client, photo):
    form = {f"f{i}": "1" for i in range(40)} | {"file": (io.BytesIO(photo()), "cat.jpg")}  # 32 parts at most
    response = client.post("/", data=form, content_type="multipart/form-data")
    assert response.status_code == 302
    assert flashes(client) == ["Upload refused: form has more than 32 parts, or a text field over 500000 bytes"]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.jpg", "/abs/path/x.jpg", "фото 猫.jpg", "a" * 5000 + ".jpg", "..\\..\\win.jpg", "x.jpg\x00.php"],
)
def test_hostile_names_are_stored_as_hash(client, calls, photo, isolated_dirs, name):
    response = client.post("/", data=upload(photo(), name), content_type="multipart/form-data")
    if name.endswith(".php"):
        assert response.status_code == 302 and not calls  # extension not allowed
        assert not (isolated_dirs / "uploads").exists()
        return
    assert response.status_code == 200
    stored = os.listdir(isolated_dirs / "uploads")
    assert stored == [calls[0][0].name] and re.fullmatch(r"[0-9a-f]{32}\.jpg", stored[0])


# ---- /predict -----------------------------------------------------------------------------------------------


def test_predict_ok_exactly_three_keys(client, calls, photo):
    response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 200
    assert response.get_json() == {"success": True, "prediction": "tabby", "score": 0.61}


@pytest.mark.parametrize("where", ["query", "form"])
def test_predict_top_k(client, calls, photo, where):
    data = upload(photo())
    url = "/predict?top_k=3" if where == "query" else "/predict"
    if where == "form":
        data["top_k"] = "3"
    body = client.post(url, data=data, content_type="multipart/form-data").get_json()
    assert list(body) == ["success", "prediction", "score", "top_k"]
    assert body["top_k"] == [["tabby", 0.61], ["tiger_cat", 0.2], ["Egyptian_cat", 0.1]]
    assert calls[0][1] == 3


@pytest.mark.parametrize("value", ["0", "11", "-1", "abc", "2.5", ""])
def test_predict_bad_top_k(client, calls, photo, value):
    response = client.post(f"/predict?top_k={value}", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json() == THREE_KEYS
    assert "top_k" in response.headers["X-Error"] and calls == []


def _bad_requests(photo):
    good = photo()
    return {
        "no file part": dict(data={"other": "x"}, content_type="multipart/form-data"),
        "misnamed field": dict(data=upload(good, field="image"), content_type="multipart/form-data"),
        "empty filename": dict(data=upload(good, ""), content_type="multipart/form-data"),
        "bad extension": dict(data=upload(good, "cat.txt"), content_type="multipart/form-data"),
        "json body": dict(json={"file": "cat.jpg"}),
        "urlencoded body": dict(data={"file": "cat.jpg"}),
        "raw body": dict(data=good, content_type="image/jpeg"),
        "broken multipart": dict(data=b"--xx\r\ngarbage", content_type="multipart/form-data; boundary=xx"),
        "zero bytes": dict(data=upload(b""), content_type="multipart/form-data"),
        "text renamed": dict(data=upload(b"hello" * 50), content_type="multipart/form-data"),
        "pdf renamed": dict(
            data=upload(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n"), content_type="multipart/form-data"
        ),
        "truncated jpeg": dict(data=upload(good[: len(good) // 2]), content_type="multipart/form-data"),
        "bomb": dict(data=upload(png_bomb(), "bomb.png"), content_type="multipart/form-data"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no file part",
        "misnamed field",
        "empty filename",
        "bad extension",
        "json body",
        "urlencoded body",
        "raw body",
        "broken multipart",
        "zero bytes",
        "text renamed",
        "pdf renamed",
        "truncated jpeg",
        "bomb",
    ],
)
def test_predict_bad_input_400_three_keys(client, calls, photo, isolated_dirs, case):
    response = client.post("/predict", **_bad_requests(photo)[case])
    assert response.status_code == 400, response.data
    assert response.get_json() == THREE_KEYS
    assert response.headers["X-Error"]
    assert calls == [] and not (isolated_dirs / "uploads").exists()  # nothing stored, nothing queued


@pytest.mark.parametrize("name", sorted(good_images()))
def test_predict_accepts_convertible_modes(client, calls, name):
    response = client.post("/predict", data=upload(good_images()[name], name), content_type="multipart/form-data")
    assert response.status_code == 200


def test_predict_get_is_405(client):
    assert client.get("/predict").status_code == 405


def test_predict_too_large_is_413_json(app, photo):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = app.test_client().post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 413
    body = response.get_json()
    assert {k: body[k] for k in THREE_KEYS} == THREE_KEYS and "limit" in body["error"]


@pytest.mark.parametrize(
    "exc, status",
    [
        (errors.QueueFull("queue is full"), 503),
        (errors.BrokerUnavailable("redis down"), 503),
        (errors.PredictionFailed("inference_failed: x"), 503),
        (errors.PredictionTimeout("no worker"), 504),
    ],
)
def test_predict_errors_map_to_status(client, monkeypatch, photo, exc, status):
    def fail(name, top_k=5, explain=False):
        raise exc

    monkeypatch.setattr(views, "model_predict", fail)
    monkeypatch.setenv("RETRY_AFTER_S", "2")
    response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == status
    assert response.get_json() == {**THREE_KEYS, "error": str(exc)}
    assert ("Retry-After" in response.headers) == isinstance(exc, errors.QueueFull)
    if isinstance(exc, errors.QueueFull):
        assert response.headers["Retry-After"] == "2"


def test_predict_worker_says_invalid_image_is_400(client, monkeypatch, photo):
    def fail(name, top_k=5, explain=False):
        raise errors.InvalidImage("cannot decode")

    monkeypatch.setattr(views, "model_predict", fail)
    response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json() == THREE_KEYS
    assert response.headers["X-Error"] == "cannot decode"


def test_predict_unexpected_error_is_json(client, monkeypatch, photo):
    monkeypatch.setattr(views, "model_predict", lambda name, top_k=5, explain=False: 1 / 0)
    response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 500 and response.get_json()["success"] is False


# ---- /display -----------------------------------------------------------------------------------------------


def test_display_serves_the_stored_upload(client, calls, photo):
    client.post("/", data=upload(photo()), content_type="multipart/form-data")
    response = client.get(f"/display/{calls[0][0].name}")
    assert response.status_code == 200 and response.data == photo()
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/display/../app.py",
        "/display/..%2Fapp.py",
        "/display/%2Fetc%2Fpasswd",
        "/display/..%2F..%2Fetc%2Fpasswd.jpg",
        "/display/missing.jpg",
        "/display/app.py",
        "/display/.upload-x",
        "/display/..",
        "/display/%2e%2e%2fx.jpg",
    ],
)
def test_display_traversal_is_404(client, path, isolated_dirs):
    (isolated_dirs / "uploads").mkdir(exist_ok=True)
    (isolated_dirs / "uploads" / ".upload-x").write_bytes(b"partial")
    (isolated_dirs / "secret.jpg").write_bytes(b"secret")
    assert client.get(path, follow_redirects=True).status_code == 404
    assert client.get("/display/..%2Fsecret.jpg", follow_redirects=True).status_code == 404


# ---- /feedback ----------------------------------------------------------------------------------------------


def _rows(isolated_dirs):
    import csv

    path = isolated_dirs / "feedback" / "feedback.csv"
    return list(csv.reader(open(path, newline="", encoding="utf-8"))) if path.exists() else []


def test_feedback_get_and_empty_post(client, isolated_dirs):
    assert client.get("/feedback").status_code == 200
    assert client.post("/feedback").status_code == 200
    assert client.post("/feedback", data={}).status_code == 200
    assert _rows(isolated_dirs) == []


def test_feedback_from_the_page(client, isolated_dirs):
    report = json.dumps({"filename": "abc.jpg", "prediction": "tabby", "score": 0.61})
    response = client.post("/feedback", data={"report": report})
    assert response.status_code == 200 and b"reported as incorrect" in response.data
    assert _rows(isolated_dirs)[0][1:] == ["abc.jpg", "tabby", "0.61"]


def test_each_feedback_post_adds_one_line_also_to_a_new_file(client, isolated_dirs):
    """The original app's contract: a report is one line of the feedback file, the first one too (no header)."""
    path = isolated_dirs / "feedback" / "feedback.csv"
    assert not path.exists()
    report = json.dumps({"filename": "abc.jpg", "prediction": "tabby", "score": 0.61})
    for lines in (1, 2):
        assert client.post("/feedback", data={"report": report}).status_code == 200
        assert len(path.read_text(encoding="utf-8").splitlines()) == lines


def test_feedback_explicit_fields_are_json(client, isolated_dirs):
    response = client.post("/feedback", data={"filename": "a.jpg", "prediction": "=cmd|' /C calc'!A0", "score": "1"})
    assert response.status_code == 200 and response.get_json() == {"success": True, "stored": True}
    assert _rows(isolated_dirs)[0][1:] == ["a.jpg", "'=cmd|' /C calc'!A0", "1"]


def test_feedback_is_stored_by_a_post_only(client, isolated_dirs):
    """Same-origin checks and the page's contract cover POST; a HEAD (or GET) carrying the same form stores nothing."""
    for method in ("HEAD", "GET"):
        response = client.open("/feedback", method=method, data={"filename": "a.jpg", "prediction": "x"})
        assert response.status_code == 200 and response.mimetype == "text/html"
    assert _rows(isolated_dirs) == []


def test_feedback_over_long_is_rejected(client, isolated_dirs):
    response = client.post("/feedback", data={"prediction": "x" * 600})
    assert response.status_code == 400 and response.get_json()["success"] is False
    page = client.post("/feedback", data={"report": json.dumps({"prediction": "x" * 600})})
    assert page.status_code == 200 and b"Feedback not stored" in page.data
    assert _rows(isolated_dirs) == []


def test_feedback_json_body(client, isolated_dirs):
    response = client.post("/feedback", json={"filename": "j.png", "prediction": "cat", "score": 0.5})
    assert response.status_code == 200 and _rows(isolated_dirs)[0][1:] == ["j.png", "cat", "0.5"]


@pytest.mark.parametrize(
    "refused, message",
    [
        ("too_large", "File too large: upload larger than the limit of 16777216 bytes"),
        ("rate_limited", "Too many uploads from this address; please wait a moment and try again"),
        ("busy", "The service is at its limit right now; please try again in 1 s"),
        ("internal_error", "The server could not take this upload just now; please try again in a moment"),
    ],
)
def test_the_page_says_why_nginx_sent_a_browser_back_to_it(client, refused, message):
    assert message in client.get(f"/?refused={refused}").get_data(as_text=True)


def test_the_page_flashes_nothing_for_a_refusal_it_does_not_know(client):
    page = client.get("/?refused=<b>x</b>").get_data(as_text=True)
    assert 'class="flash' not in page and "<b>x</b>" not in page


def test_get_predict_is_a_405_json_that_says_what_is_allowed(client):
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.get_json()["success"] is False
    assert "POST" in response.headers["Allow"]


@patch("views.model_predict")
def test_predict_takes_a_patched_plain_pair(mock_predict, client, photo):
    """The original app's tests patch model_predict to return a plain (class, score) tuple: the views take it as it is."""
    mock_predict.return_value = ("Eskimo_dog", 0.9346)
    response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.get_json() == {"success": True, "prediction": "Eskimo_dog", "score": 0.9346}
    response = client.post("/predict?top_k=3", data=upload(photo()), content_type="multipart/form-data")
    assert response.get_json()["top_k"] == [["Eskimo_dog", 0.9346]]  # the one pair it knows
    assert [c.kwargs["top_k"] for c in mock_predict.call_args_list] == [5, 3]  # one way to call it


def test_predict_writes_nothing_to_disk_and_hands_over_decoded_pixels(client, calls, photo, isolated_dirs):
    response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 200
    assert not (isolated_dirs / "uploads").exists()
    assert calls[0][0].pixels.shape == (224, 224, 3) and re.fullmatch(r"[0-9a-f]{32}\.jpg", calls[0][0].name)


def test_predict_decode_budget_busy_is_503_with_retry_after(client, calls, photo, monkeypatch):
    import decode_budget

    monkeypatch.setenv("DECODE_MEMORY_MB", "3")
    monkeypatch.setenv("DECODE_WAIT_S", "0.05")
    held = decode_budget.budget(3)
    held.acquire(3 * 2**20, timeout=0)
    try:
        response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    finally:
        held.release(3 * 2**20)
    assert response.status_code == 503 and response.headers["Retry-After"] and calls == []


def test_full_queue_retry_after_is_one_second_when_nothing_derived_it(client, monkeypatch, photo):
    """RETRY_AFTER_S=0 (the default) means `make run` derives it; a bare API still sends a valid header."""

    def fail(name, top_k=5, explain=False):
        raise errors.QueueFull("queue is full")

    monkeypatch.setattr(views, "model_predict", fail)
    monkeypatch.delenv("RETRY_AFTER_S", raising=False)
    response = client.post("/predict", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def test_index_says_so_when_the_upload_cannot_be_stored(client, calls, photo, isolated_dirs, monkeypatch):
    (isolated_dirs / "a-file").write_bytes(b"")
    monkeypatch.setenv("UPLOAD_FOLDER", str(isolated_dirs / "a-file" / "uploads"))  # no folder can be made there
    response = client.post("/", data=upload(photo()), content_type="multipart/form-data")
    assert response.status_code == 302
    assert flashes(client) == [
        "Could not classify this image: the upload could not be stored (Not a directory); please try again later"
    ]
    assert calls == []


def test_feedback_on_a_full_disk_is_a_503_that_says_why(client, monkeypatch):
    monkeypatch.setenv("FEEDBACK_FILEPATH", "/dev/full")  # every write fails with ENOSPC
    response = client.post("/feedback", json={"filename": "j.png", "prediction": "cat", "score": 0.5})
    assert response.status_code == 503
    assert response.get_json() == {
        "success": False,
        "error": "the report could not be stored (No space left on device); please try again later",
    }
    page = client.post("/feedback", data={"report": json.dumps({"filename": "a.jpg", "prediction": "cat"})})
    assert page.status_code == 503 and b"Feedback not stored: the report could not be stored" in page.data


def test_an_upload_the_temporary_folder_cannot_buffer_is_a_503(client, calls, photo, monkeypatch, tmp_path):
    """werkzeug spools a part over 500 KB to a temporary file; a full or missing temporary folder is a fault."""
    boundary = "b0undary"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'.encode()
    body = part + photo() + b"\0" * 600_000 + f"\r\n--{boundary}--\r\n".encode()
    kind = f"multipart/form-data; boundary={boundary}"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # every spool fails
    response = client.post("/predict", data=body, content_type=kind)
    assert response.status_code == 503 and response.get_json()["success"] is False
    assert response.headers["X-Error"].startswith("the upload could not be buffered (No such file or directory)")
    page = client.post("/", data=body, content_type=kind)
    assert page.status_code == 302 and flashes(client)[0].startswith("Could not classify this image: the upload")
    assert calls == []
