"""The happy path through HTTP: page, /predict, feedback, metrics, against real Redis, worker and gunicorn."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import requests

from testkit import PHOTOS, REPO, converted_model_dir, post_photo, wait_until
from testkit.request_id_cases import MADE_ID, SENT_IDS

PHOTO_NAMES = ["cat.jpg", "coffee.jpg", "rocket.jpg"]
FEEDBACK_COLUMNS = ("timestamp", "filename", "prediction", "score")  # api/feedback.py COLUMNS; no header row


def local_predictions(upload_dir, names) -> dict:
    """What ml_service.predict gives for the same files in a separate process (the worker's own code path)."""
    code = "import json, sys, ml_service; print(json.dumps({n: ml_service.predict(n) for n in sys.argv[1:]}))"
    out = subprocess.run(
        [sys.executable, "-c", code, *names],
        cwd=REPO / "model",
        check=True,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "UPLOAD_FOLDER": str(upload_dir)},
    )
    return {k: tuple(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def test_predict_returns_exactly_the_seed_contract(stack):
    response = post_photo(stack.url, "cat.jpg")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "prediction", "score"}
    assert body["success"] is True
    assert isinstance(body["prediction"], str) and body["prediction"]
    assert 0.0 <= body["score"] <= 1.0 and round(body["score"], 4) == body["score"]


def test_http_answers_equal_ml_service_predict(stack):
    expected = local_predictions(PHOTOS, PHOTO_NAMES)
    for name in PHOTO_NAMES:
        body = post_photo(stack.url, name).json()
        assert (body["prediction"], body["score"]) == expected[name], name


def test_top_k_lists_sorted_probabilities(stack):
    with open(PHOTOS / "coffee.jpg", "rb") as fh:
        body = requests.post(stack.url + "/predict?top_k=5", files={"file": ("coffee.jpg", fh)}, timeout=30).json()
    top = body["top_k"]
    assert len(top) == 5
    probs = [
        p for _, p in (item if isinstance(item, (list, tuple)) else (item["label"], item["score"]) for item in top)
    ]
    assert probs == sorted(probs, reverse=True)
    assert probs[0] == body["score"]


def test_one_request_id_links_the_answer_nginx_and_the_api(stack):
    """The client's X-Request-ID comes back, and names the request in nginx's access log and in the API's log
    line for its refusal; a request without one gets nginx's own, logged the same way."""
    truncated = (PHOTOS / "cat.jpg").read_bytes()[:2000]
    refused = requests.post(
        stack.url + "/predict",
        files={"file": ("cut.jpg", truncated)},
        headers={"X-Request-ID": "e2e-trace-1"},
        timeout=15,
    )
    answered = post_photo(stack.url, "cat.jpg")
    made = answered.headers["X-Request-ID"]
    assert refused.status_code == 400 and refused.headers["X-Request-ID"] == "e2e-trace-1"
    assert answered.status_code == 200 and MADE_ID.fullmatch(made)  # nginx's $request_id
    lines = stack.log_lines  # supervisord writes the programs' output as it comes: wait for each line
    [access] = wait_until(lambda: lines("nginx", "id=e2e-trace-1 "), 5, "the access log line of the refusal")
    assert '"POST /predict HTTP/1.1" 400' in access
    wait_until(lambda: lines("nginx", f"id={made} "), 5, "the access log line of the answer")
    [api_line] = wait_until(lambda: lines("gunicorn", "[e2e-trace-1]"), 5, "the API's log line of the refusal")
    assert "rejected" in api_line


@pytest.mark.parametrize("sent", SENT_IDS)
def test_nginx_echoes_the_ids_the_api_echoes_and_replaces_the_others(stack, sent):
    """nginx's plausibility rule is the API's (the same table tests both): an ID the API would keep reaches it."""
    answered = requests.get(stack.url + "/health", headers={"X-Request-ID": sent}, timeout=5).headers["X-Request-ID"]
    assert answered == sent if SENT_IDS[sent] else MADE_ID.fullmatch(answered)


def test_get_predict_is_405(stack):
    assert requests.get(stack.url + "/predict", timeout=5).status_code == 405


@pytest.mark.parametrize("path", ["/", "/feedback", "/health", "/static/style.css", "/v2/health/ready"])
def test_head_is_answered_as_get_without_a_body(stack, path):
    """A load balancer's check, or `curl -I`, through nginx: GET's status and type, no body."""
    get, head = requests.get(stack.url + path, timeout=5), requests.head(stack.url + path, timeout=5)
    assert head.status_code == get.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


def test_index_page_and_upload_flow(stack):
    assert requests.get(stack.url + "/", timeout=5).status_code == 200
    with open(PHOTOS / "cat.jpg", "rb") as fh:
        page = requests.post(stack.url + "/", files={"file": ("cat.jpg", fh, "image/jpeg")}, timeout=30)
    assert page.status_code == 200
    expected = post_photo(stack.url, "cat.jpg").json()
    assert expected["prediction"] in page.text
    assert "/display/" in page.text and "Report incorrect answer" in page.text


def test_feedback_is_appended_to_csv(stack):
    row = {"filename": "abc.jpg", "prediction": "tabby", "score": "0.5"}
    assert requests.post(stack.url + "/feedback", data=row, timeout=5).status_code == 200
    assert requests.post(stack.url + "/feedback", timeout=5).status_code == 200  # empty: nothing stored
    path = stack.tmp / "feedback" / "feedback.csv"
    assert len(path.read_text().splitlines()) == 1  # one report, one line: the file has no header row
    rows = list(csv.DictReader(path.open(newline=""), fieldnames=FEEDBACK_COLUMNS))
    assert [(r["filename"], r["prediction"], r["score"]) for r in rows] == [("abc.jpg", "tabby", "0.5")]
    assert rows[0]["timestamp"].endswith("+00:00")


def test_metrics_see_api_and_worker(stack):
    post_photo(stack.url, "cat.jpg")
    stack.wait_ready(1)
    from prometheus_client.parser import text_string_to_metric_families

    def worker_samples():
        text = requests.get(stack.url + "/metrics", timeout=5).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        jobs = families.get("ml_worker_jobs")
        return families, [s for s in (jobs.samples if jobs else []) if s.labels.get("worker") and s.value > 0]

    from testkit import wait_until

    wait_until(lambda: worker_samples()[1], 15, "the worker's own metrics in the API's scrape", 0.5)
    families, _ = worker_samples()
    assert "ml_queue_depth" in families and "ml_workers_ready" in families
    assert any(s.labels.get("endpoint") for s in families["api_requests"].samples)


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_health_endpoints_answer_json(stack, path):
    response = requests.get(stack.url + path, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")


def test_int8_variant_is_served_when_asked(stack, make_stack):
    card = json.loads((converted_model_dir() / "model_card.json").read_text())
    if "int8" not in card["variants"]:
        pytest.skip("model converted without --int8 (make test converts with INT8=1)")
    int8 = make_stack(workers=1, MODEL_VARIANT="int8")
    assert {w["variant"] for w in requests.get(int8.url + "/ready", timeout=5).json()["workers"]} == {"int8"}
    for name in PHOTO_NAMES:
        fp32_answer, int8_answer = post_photo(stack.url, name).json(), post_photo(int8.url, name).json()
        assert int8_answer["prediction"] == fp32_answer["prediction"]  # top-1 agreement recorded in the card
        assert abs(int8_answer["score"] - fp32_answer["score"]) <= 0.02


def test_the_openvino_runtime_answers_what_onnxruntime_answers(stack, make_stack):
    """RUNTIME=openvino runs the same ONNX file: same classes, scores within float rounding, the same heatmaps
    (the feature map comes from the same compiled model); /ready says which runtime each worker uses."""
    ov = make_stack(workers=1, RUNTIME="openvino")
    assert {w["runtime"] for w in requests.get(ov.url + "/ready", timeout=5).json()["workers"]} == {"openvino"}
    assert {w["runtime"] for w in requests.get(stack.url + "/ready", timeout=5).json()["workers"]} == {"onnxruntime"}
    for name in PHOTO_NAMES:
        want = post_photo(stack.url, name, params={"explain": "1"}).json()
        got = post_photo(ov.url, name, params={"explain": "1"}).json()
        assert got["prediction"] == want["prediction"] and abs(got["score"] - want["score"]) <= 1e-3
        cells = [(a, b) for ra, rb in zip(got["heatmap"], want["heatmap"]) for a, b in zip(ra, rb)]
        assert len(cells) == 49 and max(abs(a - b) for a, b in cells) <= 1e-3


def test_explain_adds_a_heatmap_from_the_same_inference(stack):
    """explain=1 (query or form) adds a 7 x 7 heatmap in [0, 1]; the class and score do not change; other values 400."""
    plain = post_photo(stack.url, "cat.jpg").json()
    body = post_photo(stack.url, "cat.jpg", params={"explain": "1"}).json()
    assert list(body) == ["success", "prediction", "score", "heatmap"]
    assert (body["prediction"], body["score"]) == (plain["prediction"], plain["score"])
    grid = body["heatmap"]
    assert len(grid) == 7 and all(len(row) == 7 for row in grid)
    values = [v for row in grid for v in row]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values) and max(values) == 1.0
    other = post_photo(stack.url, "coffee.jpg", data={"explain": "true"}).json()["heatmap"]
    assert max(abs(a - b) for ra, rb in zip(grid, other) for a, b in zip(ra, rb)) > 0.05
    bad = post_photo(stack.url, "cat.jpg", params={"explain": "maybe"})
    assert bad.status_code == 400 and bad.json() == {"success": False, "prediction": None, "score": None}
