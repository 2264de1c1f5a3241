"""Each request's ID: echoed when the client's is plausible, made otherwise, on every answer, in the jobs it
queues and in the lines logged while serving it."""

import io
import logging

import pytest

import request_ids
from fakeworker import FakeWorker, ok_result
from testkit.request_id_cases import MADE_ID, SENT_IDS


def post(client, photo, headers=None):
    data = {"file": (io.BytesIO(photo()), "cat.jpg")}
    return client.post("/predict", data=data, content_type="multipart/form-data", headers=headers or {})


@pytest.mark.parametrize("sent", SENT_IDS)
def test_a_plausible_id_is_echoed_an_implausible_one_replaced_and_the_job_carries_it(
    client, redis_env, redis_server, photo, sent
):
    with FakeWorker(redis_server.port, ok_result) as worker:
        response = post(client, photo, {"X-Request-ID": sent})
    answered = response.headers["X-Request-ID"]
    assert response.status_code == 200 and (answered == sent if SENT_IDS[sent] else MADE_ID.fullmatch(answered))
    assert [job["rid"] for job in worker.jobs] == [answered.encode()]


def test_a_missing_id_is_made_here(client, redis_env, redis_server, photo):
    with FakeWorker(redis_server.port, ok_result) as worker:
        response = post(client, photo)
    made = response.headers["X-Request-ID"]
    assert MADE_ID.fullmatch(made) and [job["rid"] for job in worker.jobs] == [made.encode()]


@pytest.mark.parametrize(
    "method, path", [("GET", "/v2/models/vgg16"), ("POST", "/predict"), ("FOO", "/v2"), ("GET", "/heatmap.png?w=x")]
)
def test_error_answers_name_their_request_too(client, method, path):
    response = client.open(path, method=method, headers={"X-Request-ID": "err-1"})
    assert response.status_code >= 400 and response.headers["X-Request-ID"] == "err-1"


def test_each_request_gets_its_own_made_id(client):
    first, second = (client.get("/health").headers["X-Request-ID"] for _ in range(2))
    assert MADE_ID.fullmatch(first) and MADE_ID.fullmatch(second) and first != second


def test_log_records_name_the_request_being_served_and_a_dash_outside_one(app):
    record = logging.LogRecord("views", logging.INFO, __file__, 1, "x", None, None)
    with app.test_request_context(headers={"X-Request-ID": "log-1"}):
        assert request_ids.LogFilter().filter(record) and record.request_id == "log-1"
    assert request_ids.LogFilter().filter(record) and record.request_id == "-"
    assert request_ids.current() == ""
