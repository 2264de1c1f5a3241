"""Several machines, emulated with network namespaces: Redis, the API and two worker hosts each in its own
namespace on a bridge (198.18.0.0/16) the test creates and removes. Each worker host has its own copy of the
model and its own folders (nothing shared but Redis over the network). Answers must be correct whichever host
computes them, and killing every process of one worker host under load must lose nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from testkit.netns import NamespacesUnavailable, Network, free_subnet_octet
from testkit import RedisServer, Stack, converted_model_dir, post_photo, wait_until

PHOTOS_CYCLE = ["cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"]
REQUESTS, CONCURRENCY = 80, 16
PER_CLIENT_LIMIT = 4 * CONCURRENCY


@pytest.fixture
def network():
    net = Network(f"m{os.getpid() % 100000}", subnet_octet=free_subnet_octet(os.getpid() % 254))
    try:
        net.__enter__()
    except NamespacesUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    yield net
    net.__exit__()


def copy_model(dest) -> str:
    """This host's own model folder (model card + ONNX files), never a shared one."""
    dest.mkdir(parents=True)
    for item in converted_model_dir().iterdir():
        if item.suffix in (".onnx", ".json"):
            shutil.copy2(item, dest / item.name)
    return str(dest)


def jobs_by_worker(stack: Stack) -> dict[str, float]:
    """ok answers per worker, from the API's merged /metrics (each worker reports through Redis). nginx serves
    /metrics to the API host's local scrapers only, so the test reads it from gunicorn's socket."""
    status, text = stack.api_get("/metrics")
    assert status == 200, text[:200]
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "ml_worker_jobs":
            for s in family.samples:
                if s.labels.get("outcome") == "ok":
                    out[s.labels["worker"]] = out.get(s.labels["worker"], 0) + s.value
    return out


def test_two_worker_hosts_answer_correctly_and_one_dying_loses_nothing(tmp_path, network):
    redis_ip = network.add_host("redis", 10)
    api_ip = network.add_host("api", 11)
    w1_ip, w2_ip = network.add_host("w1", 21), network.add_host("w2", 22)
    assert {redis_ip, api_ip, w1_ip, w2_ip} <= {f"{network.net}.{i}" for i in (10, 11, 21, 22)}
    redis_server = RedisServer(
        tmp_path / "redis",
        port=6379,
        host=redis_ip,
        prefix=network.prefix("redis"),
        password=secrets.token_hex(16),
        args=["--protected-mode", "no"],
    ).start()
    stack = Stack(  # the API host: nginx, gunicorn and supervisord in namespace "api", no model service of its own
        tmp_path / "api",
        redis=redis_server,
        model=False,
        host=api_ip,
        port=5000,
        prefix=network.prefix("api"),
        env={
            "REQUEST_TIMEOUT_S": 90,
            "CLAIM_IDLE_MS": 2000,
            "WORKERS": 1,
            "THREADS": 1,
            "METRICS_PUSH_INTERVAL_S": 0.5,
            "RESPONSE_CACHE": 0,  # the photos repeat: cached answers would never leave jobs in a host's hands
            # Every client of this test comes from one address (the test's end of the bridge), so it cannot spread
            # its clients over 127.0.x.y: nginx's per-client limit is set explicitly above its CONCURRENCY.
            "PER_CLIENT_CONNECTIONS": PER_CLIENT_LIMIT,
            "PER_CLIENT_INFLIGHT": PER_CLIENT_LIMIT,
        },
    )
    try:
        stack.start()
        hosts = {}
        for name in ("w1", "w2"):
            hosts[name] = stack.start_model_host(
                prefix=network.prefix(name),
                WORKER_NAME=f"host-{name}",
                MODEL_DIR=copy_model(tmp_path / name / "model"),
                UPLOAD_FOLDER=str(tmp_path / name / "uploads"),
            )
        stack.wait_ready(2, timeout=120)

        expected = {name: post_photo(stack.url, name).json()["prediction"] for name in PHOTOS_CYCLE}
        pool = ThreadPoolExecutor(CONCURRENCY)

        def one(i: int):
            name = PHOTOS_CYCLE[i % len(PHOTOS_CYCLE)]
            try:
                return name, post_photo(stack.url, name, timeout=120)  # one client host: the bridge address
            except requests.RequestException as exc:
                return name, exc

        futures = [pool.submit(one, i) for i in range(REQUESTS)]
        r = redis_server.client()

        def w1_holds_jobs() -> bool:
            consumers = r.xpending("ml:jobs", "ml:workers")["consumers"]
            return any(c["name"].decode() == "host-w1-0" and c["pending"] > 0 for c in consumers)

        wait_until(w1_holds_jobs, 60, "worker host 1 to hold unanswered jobs", 0.005)
        os.killpg(hosts["w1"].pid, signal.SIGKILL)  # every process of host 1 (supervisor and worker)
        killed_at = time.monotonic()
        outcomes = [f.result(timeout=150) for f in futures]
        pool.shutdown()
        took = time.monotonic() - killed_at

        wrong = [
            (n, getattr(resp, "status_code", resp))
            for n, resp in outcomes
            if not (
                isinstance(resp, requests.Response)
                and resp.status_code == 200
                and resp.json()["prediction"] == expected[n]
            )
        ]
        answered = jobs_by_worker(stack)
        print(
            f"\nmulti-host: {REQUESTS} requests from one client address ({CONCURRENCY} at once; per-client limit set "
            f"to {PER_CLIENT_LIMIT}), {REQUESTS - len(wrong)} correct 200s after killing host w1 "
            f"({took:.1f} s to finish); ok answers by worker: {answered}"
        )
        assert not wrong, wrong
        assert answered.get("host-w2-0", 0) > 0
        assert hosts["w2"].poll() is None and hosts["w1"].poll() is not None
        assert r.xlen("ml:jobs") == 0 and r.xpending("ml:jobs", "ml:workers")["pending"] == 0
    finally:
        try:
            stack.stop()
        finally:
            redis_server.stop()  # its namespace goes with the fixture; the process would outlive it
