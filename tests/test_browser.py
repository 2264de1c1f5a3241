"""A person's path through the page, in headless Chromium driven by Playwright."""

from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pytest
import requests

from testkit import REPO
from testkit import PHOTOS, post_photo, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags that keep Chromium from reaching for Google's hosts on a machine without internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / ".run" / "artifacts"  # screenshots kept after the run
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (make test installs Debian's chromium)"
)


@pytest.fixture
def chromium():
    """Headless Chromium, closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_upload_see_the_answer_and_report_it(chromium, stack, tmp_path):
    expected = post_photo(stack.url, "cat.jpg").json()
    page = chromium.new_page()
    page.goto(stack.url + "/")
    page.set_input_files("#file", str(PHOTOS / "cat.jpg"))
    page.click("#submit")
    page.wait_for_selector("#prediction")
    assert page.inner_text("#prediction") == expected["prediction"]
    assert float(page.inner_text("#score")) == expected["score"]
    assert page.locator("#top-k meter").count() == 5
    image = page.locator("#uploaded-image")
    assert "/display/" in image.get_attribute("src")
    image.evaluate("img => img.complete || new Promise(done => { img.onload = img.onerror = done; })")  # loads async
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    page.screenshot(path=str(tmp_path / "result.png"))
    page.get_by_role("button", name="Report incorrect answer").click()
    page.wait_for_selector(".flash")
    assert "reported" in page.inner_text(".flash")
    feedback_rows = (stack.tmp / "feedback" / "feedback.csv").open(newline="")
    rows = list(csv.DictReader(feedback_rows, fieldnames=("timestamp", "filename", "prediction", "score")))
    assert any(expected["prediction"] in (row.get("prediction") or "") for row in rows), rows


def overlay_brightness(png: bytes, rows: int, cols: int) -> np.ndarray:
    """Luminance of a screenshot of the overlay alone (over black), sampled at the centre of each heatmap cell."""
    from PIL import Image

    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    lum = px @ [0.2126, 0.7152, 0.0722]
    h, w = lum.shape
    return np.array(
        [[lum[int((i + 0.5) * h / rows), int((j + 0.5) * w / cols)] for j in range(cols)] for i in range(rows)]
    )


def test_heatmap_overlay_peaks_where_the_api_heatmap_peaks(chromium, stack):
    """The page's overlay, as Chromium renders it, is hottest where /predict?explain=1 says the map peaks."""
    api = np.array(post_photo(stack.url, "cat.jpg", params={"explain": "1"}).json()["heatmap"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page(viewport={"width": 900, "height": 700})
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(stack.url + "/")
    page.set_input_files("#file", str(PHOTOS / "cat.jpg"))
    page.click("#submit")
    overlay = page.locator("#heatmap-overlay")
    overlay.wait_for()
    page.wait_for_function("() => document.querySelector('#heatmap-overlay').complete")
    assert overlay.evaluate("img => img.naturalWidth > 0 && new URL(img.src).origin === location.origin")
    photo_box, overlay_box = page.locator("#uploaded-image").bounding_box(), overlay.bounding_box()
    assert all(abs(photo_box[k] - overlay_box[k]) < 1 for k in ("x", "y", "width", "height"))
    assert "pushed the score" in page.inner_text("#heatmap-legend")
    page.screenshot(path=str(ARTIFACTS / "browser-heatmap.png"), full_page=True)
    # the toggle is a checkbox styled by CSS: no script runs on the page
    page.click("label[for=show-heatmap]")
    assert overlay.is_hidden()
    page.screenshot(path=str(ARTIFACTS / "browser-heatmap-hidden.png"), full_page=True)
    page.click("label[for=show-heatmap]")
    assert overlay.is_visible()
    # the overlay's own pixels: photo hidden, black behind it, so brightness grows with the value
    page.locator("#uploaded-image").evaluate("img => { img.style.visibility = 'hidden'; }")
    page.locator("#stage").evaluate("el => { el.style.background = 'black'; }")
    rendered = overlay_brightness(overlay.screenshot(), *api.shape)
    assert not blocked, blocked
    hottest = np.unravel_index(np.argmax(rendered), rendered.shape)
    assert api[hottest] >= api.max() - 0.02, (hottest, api.round(2).tolist())  # the API's peak (or a near tie)
    assert np.corrcoef(rendered.ravel(), api.ravel())[0, 1] > 0.9


def test_an_upload_over_the_limit_comes_back_to_the_page_saying_why(chromium, stack, tmp_path):
    """nginx refuses the body before the app could answer: the browser lands on the page with the reason."""
    big = tmp_path / "panorama.jpg"
    big.write_bytes((PHOTOS / "cat.jpg").read_bytes() + bytes(16 * 2**20))  # over MAX_CONTENT_LENGTH (16 MiB)
    page = chromium.new_page()
    page.goto(stack.url + "/")
    page.set_input_files("#file", str(big))
    page.click("#submit")
    page.wait_for_selector(".flash")
    assert page.inner_text(".flash") == "File too large: upload larger than the limit of 16777216 bytes"
    assert page.url.startswith(stack.url + "/")


def test_an_upload_while_the_api_is_down_shows_why_and_the_way_back(chromium, stack):
    """gunicorn stops between loading the page and pressing Classify: the browser shows nginx's page, styled by the
    page's stylesheet (nginx serves /static/ itself), and its link leads back to the page once the API is back."""
    page = chromium.new_page()
    page.goto(stack.url + "/")
    page.set_input_files("#file", str(PHOTOS / "cat.jpg"))
    stack.stop_program("gunicorn")
    try:
        with page.expect_navigation() as landed:
            page.click("#submit")
        assert landed.value.status == 503
        assert page.title() == "Service unavailable"
        message = page.locator(".flash.error")
        assert message.inner_text().startswith("The image classifier cannot be reached right now.")
        assert message.evaluate("m => getComputedStyle(m).backgroundColor") == "rgb(253, 236, 234)"
    finally:
        stack.start_program("gunicorn")
    wait_until(lambda: requests.get(stack.url + "/health", timeout=5).status_code == 200, 60, "gunicorn back")
    page.click("text=Back to the upload page")
    page.wait_for_selector("#submit")
    assert page.url == stack.url + "/"
