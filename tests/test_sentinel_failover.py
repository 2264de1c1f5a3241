"""Redis Sentinel failover under load: a master, a replica, three sentinels (down-after 1 s), the real API and a
worker finding the master through REDIS_SENTINELS. SIGKILL the master mid-load: every request must get its
correct 200 or an explicit 503 JSON (never a wrong answer, never a wait to the deadline), and 200s must come back
within 15 s with no API or worker process restarted.

Jobs that die with the old master (replication is asynchronous) are answered 503: the API's BLPOP connection to
the dead master breaks at once, so the request fails fast and explicitly; the client may send it again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter

import pytest
import redis
import requests

from testkit.sentinel import SentinelServer
from testkit.source_addresses import session as client_session
from testkit import PHOTOS, RedisServer, Stack, post_photo, wait_until

PHOTOS_CYCLE = ["cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"]
REQUEST_TIMEOUT_S = 20
RECOVERY_BOUND_S = 15
CLIENTS = 4
MAX_REQUESTS = 1500  # bound in count …
MAX_SECONDS = 60  # … and in time


@pytest.fixture
def sentinel_set(tmp_path):
    """Master + replica + 3 sentinels that know each other and the replica (so a failover can happen)."""
    password = secrets.token_hex(16)  # make run uses a Redis it is given only if it asks for a password
    master = RedisServer(tmp_path / "master", password=password).start()
    replica = RedisServer(
        tmp_path / "replica", password=password, args=["--replicaof", "127.0.0.1", str(master.port)]
    ).start()
    sentinels = [
        SentinelServer(tmp_path / f"sentinel{i}", master.port, master_password=password).start() for i in range(3)
    ]
    try:
        wait_until(
            lambda: replica.client().info("replication").get("master_link_status") == "up", 20, "the replica to sync"
        )

        def converged() -> bool:
            try:
                return all(
                    int(s.master()["num-other-sentinels"]) >= 2 and int(s.master()["num-slaves"]) >= 1
                    for s in sentinels
                )
            except redis.RedisError:
                return False

        wait_until(converged, 30, "sentinels to discover each other and the replica", 0.2)
        yield master, replica, sentinels
    finally:
        for s in sentinels:
            s.stop()
        replica.stop()
        master.stop()


def _outcome(response: requests.Response | None, expected: str) -> str:
    if response is None:
        return "lost"
    if response.status_code == 200:
        return "correct" if response.json().get("prediction") == expected else "wrong"
    if (
        response.status_code == 503
        and response.headers.get("Content-Type", "").startswith("application/json")
        and response.json().get("success") is False
    ):
        return "explicit_503"
    return f"unexpected_{response.status_code}"


def _pids(stack: Stack) -> set[int]:
    """The API's and the model service's processes (Redis here is the caller's, outside the stack)."""
    return stack.program_pids("gunicorn", "model")


def test_master_sigkill_fails_over_with_explicit_503s_only(tmp_path, sentinel_set):
    master, replica, sentinels = sentinel_set
    stack = Stack(
        tmp_path / "stack",
        redis=master,
        workers=1,
        env={
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in sentinels),
            "REDIS_SENTINEL_MASTER": SentinelServer.MASTER_NAME,
            # REDIS_HOST/PORT still point at the master: they must be ignored (the failover proves it).
            "REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "THREADS": "1",
        },
    )
    try:
        stack.start()
        expected = {name: post_photo(stack.url, name).json()["prediction"] for name in PHOTOS_CYCLE}
        pids_before = _pids(stack)
        results: list[tuple[float, float, str]] = []  # (sent at, seconds, outcome)
        lock, stop = threading.Lock(), threading.Event()
        kill_at: list[float] = []
        photos = {name: (PHOTOS / name).read_bytes() for name in PHOTOS_CYCLE}

        def client(index: int) -> None:
            i = index
            http = client_session(index)  # each client from its own 127.0.x.y
            while not stop.is_set():
                with lock:
                    if len(results) >= MAX_REQUESTS:
                        return
                name = PHOTOS_CYCLE[i % len(PHOTOS_CYCLE)]
                i += 1
                sent = time.monotonic()
                try:
                    response = http.post(
                        stack.url + "/predict", files={"file": (name, photos[name])}, timeout=REQUEST_TIMEOUT_S + 10
                    )
                except requests.RequestException:
                    response = None
                outcome = _outcome(response, expected[name])
                with lock:
                    results.append((sent, time.monotonic() - sent, outcome))
                if outcome != "correct":
                    time.sleep(0.05)  # a client backs off a little after an error

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        wait_until(lambda: sum(o == "correct" for _, _, o in results) >= 20, 60, "20 answers before the kill")
        kill_at.append(time.monotonic())
        master.proc.kill()  # SIGKILL: no chance to hand anything over

        def recovered() -> bool:
            with lock:
                return sum(1 for s, _, o in results if s > kill_at[0] and o == "correct") >= 10

        try:
            wait_until(recovered, MAX_SECONDS, "10 correct answers sent after the kill", 0.1)
        finally:
            stop.set()
            for t in threads:
                t.join(REQUEST_TIMEOUT_S + 15)
        elapsed = time.monotonic() - started

        outcomes = Counter(o for _, _, o in results)
        first_ok = min(s + d for s, d, o in results if s > kill_at[0] and o == "correct")
        recovery_s = first_ok - kill_at[0]
        slowest = max(d for _, d, _ in results)
        # The sentinel that led the failover tells the others through the new master's hello channel, every 2 s:
        # one of them may still name the dead master for a moment (the service asks until one names a live one).
        wait_until(
            lambda: all(int(s.master()["port"]) == replica.port for s in sentinels),
            10,
            "every sentinel to name the promoted replica as the master",
            0.2,
        )
        other = {k: v for k, v in outcomes.items() if k not in ("correct", "explicit_503")}
        print(
            f"\nsentinel failover: {len(results)} requests in {elapsed:.1f} s, {outcomes['correct']} correct 200s, "
            f"{outcomes['explicit_503']} explicit 503s, other {other}; "
            f"first 200 {recovery_s:.2f} s after SIGKILL of the master; slowest request {slowest:.2f} s; "
            f"the replica (port {replica.port}) promoted"
        )

        assert set(outcomes) <= {"correct", "explicit_503"}, outcomes
        assert recovery_s <= RECOVERY_BOUND_S, f"no 200 within {RECOVERY_BOUND_S} s of the kill ({recovery_s:.1f} s)"
        assert slowest < REQUEST_TIMEOUT_S / 2, f"a request waited {slowest:.1f} s: a hang towards the deadline"
        assert _pids(stack) == pids_before, "an API or worker process was restarted"
        # And the service keeps answering correctly on the new master.
        assert post_photo(stack.url, "cat.jpg").json()["prediction"] == expected["cat.jpg"]
    finally:
        stack.stop()
