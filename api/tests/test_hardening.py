"""Hostile or unlucky clients: cross-site form posts, unbounded metric labels, requests that waited too long,
a missing SECRET_KEY, an upload folder past its size cap."""

import os
import stat
import time

import pytest

import admission
import secret_key
import uploads_gc
from testkit.images import good_images


# --- SECRET_KEY ------------------------------------------------------------------------------------------------


def test_missing_secret_key_is_generated_once_0600_and_shared(monkeypatch, tmp_path, caplog):
    from app import create_app

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]  # another gunicorn worker: same key
    path = tmp_path / "instance" / "secret_key"
    assert first == second and len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first
    assert "SECRET_KEY not set" in caplog.text
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert create_app().config["SECRET_KEY"] == "from-env"


def test_concurrent_workers_agree_on_one_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secret_key.load_or_create(str(tmp_path)), range(16)))
    assert len(keys) == 1 and [p.name for p in tmp_path.iterdir()] == ["secret_key"]


# --- cross-site form posts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/feedback"])
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Origin": "http://localhost:5001"},  # another port is another origin
    ],
)
def test_cross_site_form_post_is_refused(client, path, headers):
    response = client.post(path, data={"report": "{}"}, headers=headers)
    assert response.status_code == 403, (path, headers)


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost"}, {"Referer": "http://localhost/"}])
def test_same_site_or_headerless_post_is_accepted(client, headers):
    response = client.post("/feedback", data={"report": "{}"}, headers=headers)
    assert response.status_code == 200


def test_session_cookie_is_samesite_lax(app):
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


# --- metrics labels --------------------------------------------------------------------------------------------


def test_unknown_http_method_is_counted_as_other(client):
    client.open("/health", method="BREW")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="other"' in text and "BREW" not in text


# --- admission ---------------------------------------------------------------------------------------------------


def test_request_that_waited_too_long_for_a_thread_is_shed(client, monkeypatch):
    monkeypatch.setenv("MAX_QUEUE_WAIT_S", "2")
    data = good_images()["rgba.png"]
    import io

    response = client.post(
        "/predict", data={"file": (io.BytesIO(data), "x.png")}, headers={"X-Request-Start": f"t={time.time() - 3:.3f}"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json() == {"success": False, "prediction": None, "score": None, "error": admission.SHED_MESSAGE}


@pytest.mark.parametrize("accept", ["text/html,*/*;q=0.8", "*/*"])
def test_a_page_upload_that_waited_too_long_is_shed_back_to_the_page_for_a_browser(client, monkeypatch, accept):
    """A browser is sent back to the page, which says why (as nginx sends it when it sheds); a program gets the
    JSON 503 with Retry-After."""
    monkeypatch.setenv("MAX_QUEUE_WAIT_S", "2")
    import io

    response = client.post(
        "/",
        data={"file": (io.BytesIO(good_images()["rgba.png"]), "x.png")},
        headers={"X-Request-Start": f"t={time.time() - 3:.3f}", "Accept": accept},
    )
    if accept == "*/*":
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.get_json()["error"] == admission.SHED_MESSAGE
    else:
        assert response.status_code == 303 and response.headers["Location"] == "/?refused=busy"
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "The service is at its limit right now; please try again in 1 s" in page


def test_queue_wait_parsing():
    from werkzeug.test import EnvironBuilder
    from flask import Request

    now = 1_000_000.0

    def make(value):
        return Request(EnvironBuilder(headers={"X-Request-Start": value} if value else {}).get_environ())

    assert admission.queue_wait_s(make("t=999998.5"), now) == pytest.approx(1.5)
    assert admission.queue_wait_s(make("garbage"), now) == 0.0
    assert admission.queue_wait_s(make(None), now) == 0.0
    assert admission.queue_wait_s(make("t=1000010"), now) == 0.0  # from the future: ignored


# --- upload folder size cap ----------------------------------------------------------------------------------------


def _file(path, size: int, age_s: float) -> None:
    path.write_bytes(b"x" * size)
    old = time.time() - age_s
    os.utime(path, (old, old))


def test_size_cap_prunes_oldest_first(tmp_path):
    for i, age in enumerate([500, 400, 300, 200]):
        _file(tmp_path / f"{i}.jpg", 100, age)
    assert uploads_gc.prune(str(tmp_path), 0.0, max_bytes=250) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.jpg", "3.jpg"]


def test_pruning_never_deletes_a_file_just_written(tmp_path):
    _file(tmp_path / "old.jpg", 100, 7200)
    _file(tmp_path / "new.jpg", 1000, 1)  # over the cap by itself, and its request is about to read it
    removed = uploads_gc.prune(str(tmp_path), time.time() - 3600, max_bytes=10, protect_after=time.time() - 60)
    assert removed == 1 and [p.name for p in tmp_path.iterdir()] == ["new.jpg"]
