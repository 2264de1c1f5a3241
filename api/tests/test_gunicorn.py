"""The real server as `make run` serves it (gunicorn with gunicorn.conf.py behind nginx, under supervisord):
multiprocess metrics, stale files cleaned, graceful SIGTERM."""

import os
import secrets
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers import PHOTOS
from testkit import Stack
from testkit.redis_server import RedisServer
from fakeworker import FakeWorker, ok_result


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A Redis of this module's own, with a password: `make run` uses a Redis it is given only if it asks for one."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), password=secrets.token_hex(16)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(redis_server, tmp_path_factory):
    """The API (2 gunicorn processes behind nginx) on that Redis, no model service (a FakeWorker answers),
    with a stale metrics file left from a 'previous run'. One per module: the SIGTERM test, which stops gunicorn,
    comes last."""
    stack = Stack(
        tmp_path_factory.mktemp("gunicorn"),
        redis=redis_server,
        model=False,
        env={"GUNICORN_WORKERS": "2", "REQUEST_TIMEOUT_S": "5", "GUNICORN_ACCESSLOG": ""},
    )
    multiproc = stack.run_dir / "prometheus"  # run.sh's PROMETHEUS_MULTIPROC_DIR
    multiproc.mkdir(parents=True)
    (multiproc / "counter_999999.db").write_bytes(b"stale")
    stack.start()
    yield stack, multiproc
    stack.stop()


def test_metrics_are_summed_over_processes(server):
    stack, multiproc = server
    url = stack.url
    assert not (multiproc / "counter_999999.db").exists()  # emptied at start
    session_count = 20
    for _ in range(session_count):
        assert requests.get(url + "/health", timeout=5).status_code == 200  # new connection each: both processes
    fams = {f.name: f for f in text_string_to_metric_families(requests.get(url + "/metrics", timeout=5).text)}
    health = [
        s for s in fams["api_requests"].samples if s.name == "api_requests_total" and s.labels["endpoint"] == "/health"
    ]
    assert sum(s.value for s in health) >= session_count
    assert fams["ml_redis_up"].samples[0].value == 1


def test_sigterm_lets_in_flight_requests_finish(server, redis_server):
    stack, _ = server

    def slow(fields):
        time.sleep(1.0)
        return ok_result(fields)

    results = []
    with FakeWorker(redis_server.port, slow, password=redis_server.password):
        with open(os.path.join(PHOTOS, "cat.jpg"), "rb") as fh:
            data = fh.read()
        thread = threading.Thread(
            target=lambda: results.append(
                requests.post(stack.url + "/predict", files={"file": ("cat.jpg", data)}, timeout=10)
            )
        )
        thread.start()
        time.sleep(0.4)  # the request is now waiting on its result
        stack.stop_program("gunicorn")  # SIGTERM to gunicorn; supervisord waits for it to exit
        thread.join(10)
    assert results and results[0].status_code == 200 and results[0].json()["prediction"] == "tabby"
    assert stack.stopped_cleanly("gunicorn")
