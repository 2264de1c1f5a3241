"""Whatever a client uploads, the stack answers 4xx or a prediction — never 5xx — and the worker survives."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
import requests

from testkit.images import bad_uploads, odd_but_valid_uploads
from testkit import post_photo

BAD = bad_uploads()
ODD = odd_but_valid_uploads()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_upload_is_a_400_with_the_seed_body(stack, case):
    name, content = BAD[case]
    response = requests.post(stack.url + "/predict", files={"file": (name, content)}, timeout=30)
    assert response.status_code == 400, response.text
    assert {k: response.json()[k] for k in ("success", "prediction", "score")} == {
        "success": False,
        "prediction": None,
        "score": None,
    }


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_upload_on_the_page_is_a_flash_message(stack, case):
    name, content = BAD[case]
    session = requests.Session()
    response = session.post(stack.url + "/", files={"file": (name, content)}, timeout=30, allow_redirects=False)
    assert response.status_code == 302, response.status_code
    page = session.get(urljoin(stack.url + "/", response.headers["Location"]), timeout=10)
    assert page.status_code == 200 and 'class="flash' in page.text


@pytest.mark.parametrize("case", sorted(ODD))
def test_convertible_upload_is_classified(stack, case):
    name, content = ODD[case]
    response = requests.post(stack.url + "/predict", files={"file": (name, content)}, timeout=30)
    assert response.status_code == 200, (case, response.text)
    assert response.json()["success"] is True


def test_exif_rotated_photo_is_classified_upright(stack):
    name, content = ODD["exif_rotated"]
    rotated = requests.post(stack.url + "/predict", files={"file": (name, content)}, timeout=30).json()
    upright = post_photo(stack.url, "cat.jpg").json()
    assert rotated["prediction"] == upright["prediction"]
    assert abs(rotated["score"] - upright["score"]) < 0.05


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"file": "not a file"}},  # a field, not a file part
        {"files": {"picture": ("cat.jpg", b"\xff\xd8")}},  # misnamed field
        {"json": {"file": "cat.jpg"}},  # JSON body
        {"data": b"raw bytes", "headers": {"Content-Type": "application/octet-stream"}},
    ],
)
def test_malformed_requests_are_400(stack, kwargs):
    response = requests.post(stack.url + "/predict", timeout=10, **kwargs)
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_upload_over_the_size_limit_is_413_json(stack):
    response = requests.post(
        stack.url + "/predict", files={"file": ("big.jpg", b"\xff" * (17 * 1024 * 1024))}, timeout=30
    )
    assert response.status_code == 413
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "path", ["/display/../app.py", "/display/..%2Fapp.py", "/display/%2Fetc%2Fpasswd", "/display/nothing-here.jpg"]
)
def test_display_serves_only_uploads(stack, path):
    response = requests.get(stack.url + path, timeout=5)
    assert response.status_code == 404


def test_worker_is_still_alive_after_all_of_it(stack):
    assert {p.pid for p in stack.model_workers()} == stack.first_workers  # none crashed and was replaced
    assert post_photo(stack.url).status_code == 200
