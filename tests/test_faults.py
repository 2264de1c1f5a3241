"""Faults against the stack as `make run` serves it: killed and frozen workers, Redis outages, a full Redis, no
workers, graceful stops, backpressure. Programs are stopped with supervisorctl (what an operator runs) and killed
with signals.

Each test prints what it sent and what came back, so a CI log carries the figures."""

from __future__ import annotations

import base64
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis
import requests

from testkit import Stack, photo, post_photo, wait_until

PHOTOS_CYCLE = ["cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"]


def expected_answers(stack) -> dict:
    return {name: post_photo(stack.url, name).json()["prediction"] for name in PHOTOS_CYCLE}


def classify(response, expected_prediction) -> str:
    if response is None:
        return "lost"
    if response.status_code == 200:
        return "correct" if response.json()["prediction"] == expected_prediction else "wrong"
    if response.status_code in (503, 504) and response.json()["success"] is False:
        return f"explicit_{response.status_code}"
    return f"unexpected_{response.status_code}"


def fire(stack, n: int, concurrency: int, timeout: float = 120) -> tuple[ThreadPoolExecutor, list]:
    """n requests from `concurrency` threads; request i comes from client address i % concurrency."""
    pool = ThreadPoolExecutor(concurrency)

    def one(i):
        try:
            return post_photo(stack.url, PHOTOS_CYCLE[i % len(PHOTOS_CYCLE)], timeout=timeout, client=i % concurrency)
        except requests.RequestException:
            return None

    return pool, [pool.submit(one, i) for i in range(n)]


@dataclass
class BatchInHand:
    """A 2-worker stack under load, and the pid of a worker holding a batch of unacknowledged jobs."""

    stack: Stack
    r: redis.Redis
    expected: dict[str, str]
    pool: ThreadPoolExecutor
    futures: list
    pids: dict[str, int]  # worker name -> pid
    holder: int

    def outcomes(self) -> Counter:
        """Every request's outcome (waits for all), then the client pool is shut down."""
        names = [PHOTOS_CYCLE[i % len(PHOTOS_CYCLE)] for i in range(len(self.futures))]
        outcomes = Counter(classify(f.result(), self.expected[name]) for name, f in zip(names, self.futures))
        self.pool.shutdown()
        return outcomes


def load_until_a_worker_holds_a_batch(make_stack, requests_sent: int, clients: int) -> BatchInHand:
    """Nothing can be shed: deadlines and queue waits of 90 s, an admission bound (64) above the clients.
    RESPONSE_CACHE=0: the same photos repeat, and cached answers would never put a batch in a worker's hands."""
    stack = make_stack(
        workers=2, REQUEST_TIMEOUT_S=90, MAX_QUEUE_WAIT_S=90, MAX_INFLIGHT=64, CLAIM_IDLE_MS=2000, RESPONSE_CACHE=0
    )
    expected = expected_answers(stack)
    r = stack.redis_client()
    pids = {w["name"]: int(w["pid"]) for w in stack.ready_workers()}
    pool, futures = fire(stack, requests_sent, concurrency=clients)

    def holder() -> int | None:
        if sum(f.done() for f in futures) < 10:
            return None
        consumers = r.xpending("ml:jobs", "ml:workers")["consumers"]
        holding = [c["name"].decode() for c in consumers if c["pending"] > 1]
        return next((pids[n] for n in holding if n in pids), None)

    held_by = wait_until(holder, 60, "a worker to hold a batch of unacknowledged jobs", 0.002)
    return BatchInHand(stack, r, expected, pool, futures, pids, held_by)


def test_sigkill_mid_batch_loses_no_request(make_stack):
    load = load_until_a_worker_holds_a_batch(make_stack, 200, clients=32)
    os.kill(load.holder, signal.SIGKILL)  # that worker process only: the model service replaces it
    killed_at = time.monotonic()
    outcomes = load.outcomes()
    print(
        f"SIGKILL test: sent 200, outcomes {dict(outcomes)}, finished {time.monotonic() - killed_at:.1f}s after the kill"
    )
    # Nothing can be shed here, so every request must get its answer.
    assert outcomes == {"correct": 200}, outcomes
    assert load.r.xlen("ml:jobs") == 0
    assert load.r.xlen("ml:deadletter") == 0  # the killed worker's batch was reclaimed, not dead-lettered


def test_a_frozen_worker_loses_no_request_and_its_late_answers_harm_none(make_stack):
    """SIGSTOP freezes a worker with a batch in hand (a paused VM, a debugger): its leases stop being refreshed, the
    other worker reclaims the batch after CLAIM_IDLE_MS, and every request gets its answer. SIGCONT wakes the frozen
    one: it finishes the batch it had, answers jobs already answered, and serves on, unrestarted."""
    load = load_until_a_worker_holds_a_batch(make_stack, 120, clients=16)
    os.kill(load.holder, signal.SIGSTOP)
    try:
        outcomes = load.outcomes()
    finally:
        os.kill(load.holder, signal.SIGCONT)
    stack, expected = load.stack, load.expected
    after = [post_photo(stack.url, name).json().get("prediction") == expected[name] for name in PHOTOS_CYCLE * 4]
    print(f"SIGSTOP test: 120 sent, one worker frozen: {dict(outcomes)}; after SIGCONT {sum(after)}/{len(after)} right")
    assert outcomes == {"correct": 120}, outcomes
    assert all(after)

    def back() -> bool:  # the frozen one heartbeats again, with the same pid: not restarted
        return {int(w["pid"]) for w in stack.ready_workers()} == set(load.pids.values())

    wait_until(back, 15, "the frozen worker to be ready again", 0.2)
    assert load.r.xlen("ml:deadletter") == 0


def test_redis_outage_answers_503_fast_and_recovers(make_stack):
    stack = make_stack(workers=1)
    assert post_photo(stack.url).status_code == 200
    stack.stop_program("redis")
    started = time.monotonic()
    response = post_photo(stack.url, timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and response.json()["success"] is False
    assert elapsed < 3, f"503 took {elapsed:.2f}s"
    assert requests.get(stack.url + "/health", timeout=2).status_code == 200
    assert requests.get(stack.url + "/ready", timeout=5).status_code == 503
    stack.start_program("redis")  # same port, empty data: the worker must re-create its group
    started = time.monotonic()
    wait_until(lambda: post_photo(stack.url, timeout=10).status_code == 200, 40, "recovery after Redis restart", 0.5)
    print(
        f"Redis outage test: 503 in {elapsed * 1000:.0f} ms during the outage; recovered "
        f"{time.monotonic() - started:.1f}s after Redis came back"
    )


def test_full_redis_answers_503_fast_and_recovers(make_stack):
    """Redis at `maxmemory` with nothing it may evict (volatile-lru evicts only keys with a TTL; the job stream has
    none): it refuses writes, so /predict is a fast 503 that says why. Freeing memory brings answers back with no
    process restarted."""
    stack = make_stack(workers=1, RESPONSE_CACHE=0)
    expected = expected_answers(stack)["cat.jpg"]
    pids = stack.program_pids("gunicorn", "model")
    r = stack.redis_client()
    r.set("test:filler", b"x" * (8 << 20))  # no TTL: never evicted
    r.config_set("maxmemory", int(r.info("memory")["used_memory"]) - (4 << 20))  # below what is held: full
    try:
        started = time.monotonic()
        responses = [post_photo(stack.url, timeout=10) for _ in range(3)]
        elapsed = (time.monotonic() - started) / len(responses)
        assert [x.status_code for x in responses] == [503] * 3
        assert all("OutOfMemoryError" in x.json()["error"] for x in responses), responses[0].text
        assert elapsed < 1, f"503 took {elapsed:.2f}s"
        assert requests.get(stack.url + "/health", timeout=2).status_code == 200
    finally:
        r.delete("test:filler")
    started = time.monotonic()
    wait_until(lambda: post_photo(stack.url, timeout=10).json().get("prediction") == expected, 30, "answers", 0.5)
    assert stack.program_pids("gunicorn", "model") == pids
    print(
        f"Redis full test: 503 in {elapsed * 1000:.0f} ms while full; correct answers "
        f"{time.monotonic() - started:.1f}s after memory was freed"
    )


def test_keys_of_ours_holding_another_type_are_moved_aside_and_answers_resume(make_stack):
    """A hand edit turns the job stream and the heartbeats into strings. Requests meanwhile get an explicit 503 (never a
    500 or a hang); the worker moves both keys aside (kept for a human) and, with no process restarted, /predict
    answers correctly and /ready is ready again."""
    stack = make_stack(workers=1, RESPONSE_CACHE=0)
    expected = expected_answers(stack)["cat.jpg"]
    pids = stack.program_pids("gunicorn", "model")
    r = stack.redis_client()
    r.set("ml:jobs", "a hand edit")  # SET replaces a key of any type
    r.set("ml:heartbeats", "a hand edit")
    started, seen = time.monotonic(), Counter()

    def answered_and_ready() -> bool:
        response = post_photo(stack.url, timeout=10)
        seen[response.status_code] += 1
        ok = response.status_code == 200 and response.json()["prediction"] == expected
        return ok and requests.get(stack.url + "/ready", timeout=5).status_code == 200

    wait_until(answered_and_ready, 20, "correct answers and readiness", 0.1)
    elapsed = time.monotonic() - started
    assert set(seen) <= {200, 503}, seen
    assert r.get("ml:set-aside:ml:jobs") == b"a hand edit" and r.get("ml:set-aside:ml:heartbeats") == b"a hand edit"
    assert stack.program_pids("gunicorn", "model") == pids

    def moves_counted() -> float:  # one per key moved, in the worker metrics that /metrics shows
        text = requests.get(stack.url + "/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("ml_worker_errors_total{") and 'kind="key_moved_aside"' in line
        )

    assert wait_until(lambda: moves_counted() >= 2, 10, "the moves counted in /metrics", 0.2)
    print(f"Keys of another type: answered and ready {elapsed:.1f}s after the edit; statuses meanwhile {dict(seen)}")


def test_no_worker_is_a_503_at_once_for_every_inference(make_stack):
    """A fixed pool with no worker ready (the default): /predict, the page and the Open Inference Protocol answer
    503 + Retry-After at once instead of holding each client until the deadline, and nothing is queued."""
    stack = make_stack(workers=0, REQUEST_TIMEOUT_S=20)
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(photo()).decode()]}
    started = time.monotonic()
    answers = [
        post_photo(stack.url, timeout=15),
        requests.post(
            stack.url + "/", files={"file": ("cat.jpg", photo())}, headers={"Accept": "text/html"}, timeout=15
        ),
        requests.post(f"{stack.url}/v2/models/resnet50/infer", json={"inputs": [tensor]}, timeout=15),
    ]
    elapsed = time.monotonic() - started
    print(f"no worker: {[a.status_code for a in answers]} in {elapsed:.2f} s")
    predict, page, v2 = answers
    assert predict.status_code == 503 and predict.headers["Retry-After"] and "no worker" in predict.json()["error"]
    assert page.status_code == 200 and "no worker is ready" in page.text  # back to the page, which says why
    assert v2.status_code == 503 and v2.headers["Retry-After"] and set(v2.json()) == {"error"}
    assert elapsed < 3, elapsed
    assert stack.redis_client().xlen("ml:jobs") == 0


def test_no_worker_for_a_pool_scaling_from_zero_ends_in_504(make_stack):
    """With SCALE_FROM_ZERO, /predict and an Open Inference Protocol inference naming no version wait in the queue
    for a worker (what wakes a pool scaled to zero), until the deadline; their jobs are deleted then, so no late
    worker computes them."""
    stack = make_stack(workers=0, REQUEST_TIMEOUT_S=2, SCALE_FROM_ZERO=1)
    started = time.monotonic()
    response = post_photo(stack.url, timeout=15)
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["success"] is False and response.json().get("error")
    assert 1.5 < elapsed < 6, elapsed
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(photo()).decode()]}
    started = time.monotonic()
    response = requests.post(f"{stack.url}/v2/models/resnet50/infer", json={"inputs": [tensor]}, timeout=15)
    elapsed = time.monotonic() - started
    assert response.status_code == 504 and set(response.json()) == {"error"}, response.text
    assert 1.5 < elapsed < 6, elapsed
    assert stack.redis_client().xlen("ml:jobs") == 0


def test_an_api_that_never_answers_ends_in_nginxs_504_a_page_for_a_browser(make_stack):
    """gunicorn frozen (SIGSTOP: a deadlock, a paused VM) takes connections but never answers: nginx answers 504
    once PROXY_READ_TIMEOUT_S has passed (REQUEST_TIMEOUT_S + MAX_QUEUE_WAIT_S + 10 s), with a page of its own to a
    browser loading the upload page and JSON to a program; after SIGCONT, answers resume."""
    stack = make_stack(workers=0, REQUEST_TIMEOUT_S=1, MAX_QUEUE_WAIT_S=1)  # nginx waits 12 s
    frozen = stack.group_members(stack.program_pid("gunicorn"))
    started = time.monotonic()
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(2) as pool:
            page, program = pool.map(
                lambda accept: requests.get(stack.url + "/", headers={"Accept": accept}, timeout=60),
                ["text/html,application/xhtml+xml,*/*;q=0.8", "*/*"],
            )
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    elapsed = time.monotonic() - started
    print(
        f"gunicorn frozen: {page.status_code} {page.headers['content-type']} and {program.status_code} after {elapsed:.1f} s"
    )
    assert 11 < elapsed < 30, elapsed
    assert page.status_code == 504 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>No answer in time</title>" in page.text and "did not answer in time" in page.text
    assert "retry-after" not in page.headers  # nginx cannot know when a frozen API answers again
    assert program.status_code == 504 and program.headers["content-type"] == "application/json"
    assert program.json() == {"success": False, "prediction": None, "score": None, "error": "no answer in time"}
    assert requests.get(stack.url + "/", headers={"Accept": "text/html"}, timeout=10).status_code == 200


def test_sigterm_worker_finishes_and_acks_its_batch(make_stack):
    # BATCH_WAIT_MS lets the batch fill up with several jobs before the worker runs it.
    stack = make_stack(workers=1, BATCH_SIZE=8, BATCH_WAIT_MS=300, REQUEST_TIMEOUT_S=60)
    r = stack.redis_client()
    pool, futures = fire(stack, 8, concurrency=8)
    wait_until(lambda: r.xpending("ml:jobs", "ml:workers")["pending"] > 1, 30, "the worker to take a batch", 0.005)
    taken = r.xpending("ml:jobs", "ml:workers")["pending"]
    stack.stop_program("model")  # SIGTERM to the model service's group, as supervisord stops it; waits for the exit
    assert stack.stopped_cleanly("model")
    wait_until(lambda: sum(f.done() for f in futures) >= taken, 10, "the answers of the finished batch")
    codes = Counter()
    # Jobs the worker had taken are answered; anything it had not taken is still queued, not lost.
    for f in futures:
        if f.done():
            codes[f.result().status_code] += 1
    queued = r.xlen("ml:jobs")
    print(
        f"SIGTERM worker test: 8 sent, {taken}+ taken in the batch, {codes[200]} answered before exit, "
        f"{queued} still queued"
    )
    assert r.xpending("ml:jobs", "ml:workers")["pending"] == 0
    assert codes[200] >= taken
    stack.start_program("model")  # the rest are served by a new worker
    assert all(f.result().status_code == 200 for f in futures)
    pool.shutdown()


def test_sigterm_gunicorn_lets_in_flight_requests_finish(make_stack):
    # A slow batch (BATCH_WAIT_MS) keeps all six requests in flight inside gunicorn when SIGTERM arrives.
    stack = make_stack(workers=1, BATCH_WAIT_MS=1500, BATCH_SIZE=8)
    r = stack.redis_client()
    pool, futures = fire(stack, 6, concurrency=6)
    wait_until(
        lambda: r.xinfo_stream("ml:jobs")["entries-added"] >= 6 and not any(f.done() for f in futures),
        20,
        "six requests queued and waiting in gunicorn",
        0.01,
    )
    stack.stop_program("gunicorn")  # SIGTERM, then supervisord waits up to its stopwaitsecs
    codes = Counter(f.result().status_code if f.result() is not None else "lost" for f in futures)
    pool.shutdown()
    print(f"SIGTERM gunicorn test: 6 sent, outcomes {dict(codes)}")
    assert codes[200] == 6, codes
    assert stack.stopped_cleanly("gunicorn")


def test_queue_full_answers_503_with_retry_after_at_once(make_stack):
    stack = make_stack(workers=0, MAX_QUEUE_DEPTH=3, REQUEST_TIMEOUT_S=20, SCALE_FROM_ZERO=1)  # jobs wait, unread
    pool, futures = fire(stack, 3, concurrency=3)
    r = stack.redis_client()
    wait_until(lambda: r.xlen("ml:jobs") >= 3, 10, "three queued jobs")
    started = time.monotonic()
    response = post_photo(stack.url, timeout=10)
    assert response.status_code == 503
    assert time.monotonic() - started < 1.0
    assert int(response.headers["Retry-After"]) >= 1
    assert requests.get(stack.url + "/health", timeout=2).status_code == 200
    assert requests.get(stack.url + "/metrics", timeout=2).status_code == 200
    stack.start_program("model")
    assert all(f.result().status_code == 200 for f in futures)
    pool.shutdown()
