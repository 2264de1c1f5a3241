"""A person's path through the page, in headless Chromium driven by Playwright."""
from __future__ import annotations

import csv
import shutil

import pytest

from testkit.stack import PHOTOS, post_photo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags that keep Chromium from reaching for Google's hosts on a machine without internet.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs Debian's chromium)")
def test_upload_see_the_answer_and_report_it(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    expected = post_photo(stack.url, "cat.jpg").json()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(stack.url + "/")
            page.set_input_files("#file", str(PHOTOS / "cat.jpg"))
            page.click("#submit")
            page.wait_for_selector("#prediction")
            assert page.inner_text("#prediction") == expected["prediction"]
            assert float(page.inner_text("#score")) == expected["score"]
            assert page.locator("#top-k meter").count() == 5
            image = page.locator("#uploaded-image")
            assert "/display/" in image.get_attribute("src")
            assert image.evaluate("img => img.complete && img.naturalWidth > 0")
            page.screenshot(path=str(tmp_path / "result.png"))
            page.get_by_role("button", name="Report incorrect answer").click()
            page.wait_for_selector(".flash")
            assert "reported" in page.inner_text(".flash")
        finally:
            browser.close()
    rows = list(csv.DictReader((stack.tmp / "feedback" / "feedback.csv").open(newline="")))
    assert any(expected["prediction"] in (row.get("prediction") or "") for row in rows), rows
