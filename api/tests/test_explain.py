"""`explain`: the flag, the `heatmap` key of /predict, the page's overlay and the PNG route that draws it."""

import io
import re

import numpy as np
import pytest
from PIL import Image

import explain
import overlay
import views
from fakeworker import FakeWorker, ok_result
from middleware import Classification

GRID = [[round(0.1 * ((i + j) % 8) + 0.02 * i, 4) for j in range(7)] for i in range(7)]
GRID[2][5] = 1.0  # the peak
THREE_KEYS = {"success": False, "prediction": None, "score": None}


@pytest.fixture
def calls(monkeypatch):
    """views.model_predict replaced by a fake that records its keyword arguments and answers with GRID."""
    seen = []

    def fake(image_name, **kwargs):
        seen.append(kwargs)
        return Classification("tabby", 0.61, (("tabby", 0.61),), GRID if kwargs.get("explain") else None)

    monkeypatch.setattr(views, "model_predict", fake)
    return seen


def post(client, photo, url="/predict", **fields):
    data = {"file": (io.BytesIO(photo()), "cat.jpg"), **fields}
    return client.post(url, data=data, content_type="multipart/form-data")


@pytest.mark.parametrize("raw, wanted", [(None, False), ("0", False), ("false", False), ("1", True), ("true", True)])
def test_flag_values(raw, wanted):
    assert explain.parse_flag(raw) is wanted


@pytest.mark.parametrize("raw", ["", "yes", "on", "2", "TRUE ", "1.0", "tru"])
def test_other_flag_values_are_refused(raw):
    with pytest.raises(ValueError, match="0, 1, true, false"):
        explain.parse_flag(raw)


@pytest.mark.parametrize("where", ["query", "form"])
@pytest.mark.parametrize("value", ["1", "true"])
def test_predict_with_explain_adds_the_heatmap(client, calls, photo, where, value):
    url = f"/predict?explain={value}" if where == "query" else "/predict"
    response = post(client, photo, url, **({"explain": value} if where == "form" else {}))
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["success", "prediction", "score", "heatmap"] and body["heatmap"] == GRID
    assert calls == [{"top_k": 5, "explain": True}]


@pytest.mark.parametrize("url", ["/predict", "/predict?explain=0", "/predict?explain=false"])
def test_predict_without_explain_is_unchanged(client, calls, photo, url):
    body = post(client, photo, url).get_json()
    assert body == {"success": True, "prediction": "tabby", "score": 0.61}
    assert calls == [{"top_k": 5, "explain": False}]  # one way to call model_predict; the answer is unchanged


def test_explain_and_top_k_together(client, calls, photo):
    body = post(client, photo, "/predict?top_k=1&explain=1").get_json()
    assert list(body) == ["success", "prediction", "score", "top_k", "heatmap"]
    assert calls == [{"top_k": 1, "explain": True}]


@pytest.mark.parametrize("value", ["yes", "", "2", "on"])
def test_bad_explain_is_400_before_queueing(client, calls, photo, value):
    response = post(client, photo, f"/predict?explain={value}")
    assert response.status_code == 400 and response.get_json() == THREE_KEYS
    assert "explain" in response.headers["X-Error"] and calls == []


def test_model_that_cannot_explain_is_503(client, monkeypatch, photo):
    monkeypatch.setattr(views, "model_predict", lambda name, **kw: ("tabby", 0.61))
    response = post(client, photo, "/predict?explain=1")
    assert response.status_code == 503 and "feature map" in response.get_json()["error"]


@pytest.mark.parametrize("bad", [[[0.5, 1.2]], [[0.5], [0.1, 0.2]], [], [["x"]], [[float("nan")]], [[True]]])
def test_malformed_heatmaps_are_not_passed_on(bad):
    assert not explain.valid(bad)
    with pytest.raises(explain.PredictionFailed):
        explain.heatmap_of(Classification("a", 0.5, (), bad))


def test_explain_travels_through_the_queue(client, redis_env, redis_server, photo):
    """The job carries explain=1 only when asked; the worker's heatmap comes back in the body."""

    def answer(fields):
        return {**ok_result(fields), **({"heatmap": GRID} if fields.get("explain") == b"1" else {})}

    with FakeWorker(redis_server.port, answer) as worker:
        explained = post(client, photo, "/predict?explain=1").get_json()
        plain = post(client, photo, "/predict").get_json()
    assert explained["heatmap"] == GRID and "heatmap" not in plain
    assert [job.get("explain") for job in worker.jobs] == [b"1", None]


# ---- the overlay ------------------------------------------------------------------------------------------


def test_cells_round_trip_through_the_url():
    token = overlay.encode_cells(GRID)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    np.testing.assert_allclose(overlay.decode_cells(token, 7, 7), GRID, atol=0.5 / 255)
    for rows, cols in [(7, 6), (0, 7), (65, 1)]:
        with pytest.raises(ValueError):
            overlay.decode_cells(token, rows, cols)


def test_app_import_does_not_load_numpy():
    """gunicorn workers import the app when they boot; numpy loads only when an overlay is drawn."""
    import subprocess
    import sys

    code = "import sys, app; print('numpy' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=overlay.__file__.rsplit("/", 1)[0],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "SECRET_KEY": "k"},
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]


def test_colormap_is_perceptually_ordered():
    luminance = overlay.lut() @ np.array([0.2126, 0.7152, 0.0722])
    assert overlay.lut().shape == (256, 3) and luminance[-1] - luminance[0] > 200
    assert np.diff(luminance).min() > -1  # inferno rises in lightness throughout (to within uint8 rounding)


def test_heatmap_png_is_smooth_coloured_and_translucent(client):
    query = overlay.overlay_query(GRID, (280, 210))
    response = client.get("/heatmap.png", query_string=query)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert "immutable" in response.headers["Cache-Control"]
    img = Image.open(io.BytesIO(response.data))
    assert img.mode == "RGBA" and img.size == (280, 210)
    px = np.asarray(img).astype(float)
    alpha = px[..., 3] / 255
    assert 0.1 < alpha.min() and alpha.max() < 0.75  # partly transparent everywhere
    brightness = (px[..., :3] @ [0.2126, 0.7152, 0.0722]) * alpha
    cell = np.unravel_index(np.argmax(brightness), brightness.shape)
    assert (int(cell[0] * 7 / 210), int(cell[1] * 7 / 280)) == (2, 5)  # brightest where the grid peaks
    assert len(np.unique(px[..., 0])) > 100  # smooth, not 49 flat blocks


@pytest.mark.parametrize("query", ["cells=AAAA", "cells=!!&rows=1&cols=1", "w=0&cells=", "w=5000", "rows=x"])
def test_heatmap_png_bad_query_is_a_400_saying_what_is_wrong(client, query):
    response = client.get(f"/heatmap.png?{query}")
    assert response.status_code == 400 and response.get_json()["error"].startswith("malformed overlay query: ")


def test_page_shows_overlay_toggle_and_legend(client, calls, photo):
    page = post(client, photo, "/").get_data(as_text=True)
    assert calls == [{"top_k": 5, "explain": True}]
    src = re.search(r'<img src="([^"]+)" alt="" class="heatmap" id="heatmap-overlay">', page).group(1)
    assert src.startswith("/heatmap.png?") and "&amp;w=" in src
    assert '<input type="checkbox" id="show-heatmap" class="heatmap-toggle" checked>' in page
    assert 'for="show-heatmap"' in page and "pushed the score of <strong>tabby</strong> up" in page
    png = client.get(src.replace("&amp;", "&"))
    width, height = Image.open(io.BytesIO(photo())).size
    assert png.status_code == 200 and Image.open(io.BytesIO(png.data)).size == (320, round(320 * height / width))


def test_page_without_heatmap_shows_the_plain_image(client, monkeypatch, photo):
    monkeypatch.setattr(views, "model_predict", lambda name, **kw: ("Eskimo_dog", 0.9346))
    page = post(client, photo, "/").get_data(as_text=True)
    assert 'id="uploaded-image"' in page and "heatmap-overlay" not in page and "show-heatmap" not in page
