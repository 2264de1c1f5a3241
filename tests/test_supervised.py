"""The stack as `make run` starts it (supervisord + nginx) survives its own failures and hostile clients.

One stack for the module, default settings (the admission bound, gunicorn threads, timeouts) but a short heartbeat,
two model workers.
Every test prints what it sent, what came back and how long recovery took, so a CI log carries the figures.
"""

from __future__ import annotations

import json
import os
import re
import signal
import itertools
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests
from testkit import PHOTOS, Stack, post_photo, wait_until
from testkit.source_addresses import session as client_session

pytestmark = pytest.mark.timeout(300)
RECOVERY_LIMIT_S = 30
HEARTBEAT = {"HEARTBEAT_INTERVAL_S": "0.5", "HEARTBEAT_TTL_S": "3"}  # a dead worker leaves /ready within seconds
CAT = (PHOTOS / "cat.jpg").read_bytes()
SHED_REASON = "service at its admission limit; retry later"  # X-Error of the admission server's 503


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("supervised"), env=HEARTBEAT, workers=2).start()
    s.expected = post_photo(s.url).json()["prediction"]
    yield s
    s.stop()


def unique_jpeg(i: int) -> bytes:
    """The cat photo with bytes after its end marker: decodes the same, never the same upload twice."""
    return CAT + f"unique-{i}-{time.time_ns()}".encode()


_sent = itertools.count()


def predict(url: str, data: bytes | None = None, timeout: float = 60) -> requests.Response:
    """Unique bytes by default: a response-cache hit would answer without the model and hide the fault."""
    data = data if data is not None else unique_jpeg(next(_sent))
    return requests.post(url + "/predict", files={"file": ("cat.jpg", data, "image/jpeg")}, timeout=timeout)


def answers_correctly(sup) -> bool:
    try:
        r = predict(sup.url, timeout=10)
        return r.status_code == 200 and r.json()["prediction"] == sup.expected
    except requests.RequestException:
        return False


def recover(sup, what: str) -> float:
    started = time.monotonic()
    wait_until(lambda: answers_correctly(sup), RECOVERY_LIMIT_S, f"a correct answer after {what}", 0.2)
    return time.monotonic() - started


def ready_pids(sup) -> set[int]:
    try:
        workers = requests.get(sup.url + "/ready/details", timeout=2).json().get("workers", [])
    except (requests.RequestException, ValueError):
        return set()
    return {int(w["pid"]) for w in workers if w.get("ready") and w.get("pid")}


# --- abuse ---------------------------------------------------------------------------------------------------------


def test_300_half_sent_requests_do_not_delay_health_or_predict(sup):
    held = []
    try:
        for i in range(300):  # half a request line, or a request cut inside its headers; then nothing
            s = socket.create_connection(("127.0.0.1", sup.port), timeout=5)
            s.sendall(b"POST /pred" if i % 2 else b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len")
            held.append(s)
        started = time.monotonic()
        health = requests.get(sup.url + "/health", timeout=5)
        health_s = time.monotonic() - started
        started = time.monotonic()
        answer = predict(sup.url, timeout=10)
        predict_s = time.monotonic() - started
    finally:
        for s in held:
            s.close()
    print(
        f"slow clients: held 300 half-sent requests open (150 half a request line, 150 cut in the headers); /health {health.status_code} in {health_s * 1000:.0f} ms, "
        f"/predict {answer.status_code} in {predict_s * 1000:.0f} ms"
    )
    assert health.status_code == 200 and health_s < 1.0
    assert answer.status_code == 200 and answer.json()["prediction"] == sup.expected and predict_s < 5.0


def test_load_beyond_the_bound_is_shed_with_retry_after(sup):
    """160 clients for 10 s against the defaults: only 200 and 503 (+ the derived Retry-After); admitted requests
    stay within the latency the bound was sized for."""
    clients, duration = 160, 10.0
    bound = sup.admission_bound
    shed = json.loads((sup.run_dir / "admission.json").read_text())  # deploy/render.py's derivation
    assert bound == shed["max_inflight"] and shed["max_inflight_source"] in ("rate", "floor", "API threads")
    assert bound <= shed["api_concurrency"]  # never more than gunicorn serves at once
    results: list[tuple[int, float, str | None, str | None]] = []
    refused_before = sup.nginx_refusals()
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client(n: int) -> None:
        session, i = client_session(n), 0  # each client from its own 127.0.x.y, as real clients are
        while time.monotonic() < stop_at and i < 200:
            i += 1
            started = time.monotonic()
            try:
                r = session.post(
                    sup.url + "/predict", files={"file": ("c.jpg", unique_jpeg(n * 1000 + i), "image/jpeg")}, timeout=40
                )
                status, retry_after, reason = r.status_code, r.headers.get("Retry-After"), r.headers.get("X-Error")
            except requests.RequestException as exc:
                status, retry_after, reason = type(exc).__name__, None, None
            with lock:
                results.append((status, time.monotonic() - started, retry_after, reason))
            if status == 503:
                time.sleep(float(retry_after or 1))  # what Retry-After asks of a client

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    codes = Counter(status for status, _, _, _ in results)
    ok = sorted(latency for status, latency, _, _ in results if status == 200)
    throughput = len(ok) / elapsed  # measured here: the machine may be shared
    # docs/operations.md, "Load shedding": an admitted request waits about MAX_INFLIGHT / throughput (the bound was
    # sized for SHED_LATENCY_TARGET_S at the measured rate; p99 <= 3 s is the target). On a shared machine the rate
    # measured here is what counts: twice MAX_INFLIGHT / throughput + 1 s is generous, a behaviour check, not a timing.
    documented = 2 * bound / max(throughput, 1e-9) + 1.0
    p99 = ok[int(0.99 * (len(ok) - 1))] if ok else float("nan")
    print(
        f"shedding: {clients} clients x {duration:.0f} s, bound {bound} (derived: {shed['max_inflight_source']}, "
        f"fleet {shed['capacity'].get('img_s')} img/s), Retry-After {shed['retry_after_s']} s: codes {dict(codes)}, "
        f"{throughput:.1f} answers/s, 200 latency p50 {ok[len(ok) // 2] if ok else float('nan'):.2f} s "
        f"p99 {p99:.2f} s (target 3 s) max {ok[-1] if ok else float('nan'):.2f} s (documented bound {documented:.2f} s)"
    )
    assert set(codes) <= {200, 503}, codes
    assert codes[200] > 0 and codes[503] > 0, codes
    assert {ra for status, _, ra, _ in results if status == 503} == {str(shed["retry_after_s"])}
    # Each 503 nginx's admission server made is counted once for Prometheus; the API's own 503s are not.
    shed_by_nginx = sum(1 for status, _, _, reason in results if status == 503 and reason == SHED_REASON)
    assert shed_by_nginx > 0
    assert sup.nginx_refusals_since(refused_before, shed_by_nginx)[("shed", "503")] == shed_by_nginx
    assert p99 <= max(3.0, documented), (p99, documented)
    assert ok[-1] <= documented, (ok[-1], documented)
    assert answers_correctly(sup)


def test_metrics_only_for_local_scrapers(sup):
    local = requests.get(sup.url + "/metrics", timeout=5)
    s = socket.create_connection(("127.0.0.1", sup.port), timeout=5, source_address=("127.0.0.2", 0))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    remote = s.recv(200).decode(errors="replace")
    s.close()
    print(f"/metrics: from 127.0.0.1 -> {local.status_code}; from 127.0.0.2 -> {remote.splitlines()[0]}")
    assert local.status_code == 200 and "api_requests" in local.text
    assert remote.startswith("HTTP/1.1 403")


def test_cross_site_form_post_refused_same_site_accepted_through_nginx(sup):
    foreign = requests.post(
        sup.url + "/feedback", data={"report": "{}"}, headers={"Origin": "http://evil.example"}, timeout=5
    )
    same = requests.post(sup.url + "/feedback", data={"report": "{}"}, headers={"Origin": sup.url}, timeout=5)
    print(f"POST /feedback Origin evil.example -> {foreign.status_code}; Origin {sup.url} -> {same.status_code}")
    assert foreign.status_code == 403 and same.status_code == 200  # nginx forwarded Host with its port


def test_oversized_upload_gets_json_413_from_nginx(sup):
    limit = int((sup.run_dir / "nginx" / "default.conf").read_text().split("client_max_body_size ")[1].split(";")[0])
    r = requests.post(
        sup.url + "/predict", files={"file": ("big.jpg", b"\xff" * (limit + 1), "image/jpeg")}, timeout=30
    )
    print(f"upload of {limit + 1} B -> {r.status_code} {r.text.strip()[:80]}")
    assert r.status_code == 413 and r.json()["success"] is False


def test_static_files_served_by_nginx(sup):
    r = requests.get(sup.url + "/static/style.css", timeout=5)
    assert r.status_code == 200 and "Expires" in r.headers  # nginx's `expires`, Flask does not set it


@pytest.mark.parametrize(
    "method, path, headers, status, refusal, reason",
    [
        ("GET", "/static/nope.css", {}, 404, "not_found", "no such file or route"),
        ("GET", "/static/", {}, 404, "not_found", "no such file or route"),  # a folder: not a listing refused (403)
        ("GET", "/_nginx/malformed", {}, 404, "not_found", "no such file or route"),  # an error page's URI
        ("POST", "/static/style.css", {}, 405, "method_not_allowed", "static files answer GET and HEAD only"),
        (
            "GET",
            "/static/style.css",
            {"If-Match": '"other"'},
            412,
            "precondition_failed",
            "the file does not meet If-Match or If-Unmodified-Since",
        ),
    ],
)
def test_what_nginx_cannot_serve_under_static_is_a_json_error_it_counts(
    sup, method, path, headers, status, refusal, reason
):
    before = sup.nginx_refusals()
    r = requests.request(method, sup.url + path, headers=headers, data=b"x" if method == "POST" else None, timeout=5)
    assert (r.status_code, r.headers["Content-Type"], r.json(), r.headers["X-Error"]) == (
        status,
        "application/json",
        {"error": reason},
        reason,
    )
    assert r.headers.get("Allow") == ("GET, HEAD" if status == 405 else None)
    assert sup.nginx_refusals_since(before, 1) == {(refusal, str(status)): 1}


@pytest.mark.parametrize("ranges", ["bytes=99999-", "bytes=0-1,5-6", "bytes=x"])
def test_a_static_file_ignores_range_so_no_range_is_an_html_416(sup, ranges):
    whole = requests.get(sup.url + "/static/style.css", timeout=5)
    r = requests.get(sup.url + "/static/style.css", headers={"Range": ranges}, timeout=5)
    assert r.status_code == 200 and r.content == whole.content and "Content-Range" not in r.headers
    assert r.raw.headers.getlist("X-Request-ID") == [r.headers["X-Request-ID"]]  # one ID, as on every answer


# --- faults: each process SIGKILLed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("program", ["nginx", "gunicorn", "model"])
def test_program_sigkilled_recovers_without_orphans(sup, program):
    pgid = sup.program_pid(program)
    members_before = sup.group_members(pgid)
    os.kill(pgid, signal.SIGKILL)  # the master / parent process only, as a crash would
    killed = time.monotonic()
    first = predict(sup.url, timeout=40)  # answered or refused explicitly, never a hang or an HTML error page
    meanwhile = f"{first.status_code} {first.headers.get('Content-Type')} in {time.monotonic() - killed:.2f} s"
    assert first.status_code in (200, 503, 504) and first.headers["Content-Type"].startswith("application/json")
    recover(sup, f"SIGKILL of {program}")
    recovery = time.monotonic() - killed
    # supervisord restarted it (a new group recorded) and no process of the old group is left (orphans)
    wait_until(
        lambda: sup.program_pid(program) != pgid and not sup.group_members(pgid),
        RECOVERY_LIMIT_S,
        f"a new {program} and the old one's processes gone",
    )
    if program == "model":  # the new service's own workers serve, not leftovers of the old one
        wait_until(
            lambda: len(ready_pids(sup) & {p.pid for p in sup.model_workers()}) >= 2,
            RECOVERY_LIMIT_S,
            "two ready workers of the new model service",
            0.2,
        )
    recover(sup, f"restart of {program}")
    restarted = time.monotonic() - killed
    print(
        f"SIGKILL {program} master (pid {pgid}, {len(members_before)} processes in its group): /predict right after "
        f"-> {meanwhile}; correct answer "
        f"{recovery:.1f} s after the kill; restarted by supervisord (all workers ready, old group empty) after "
        f"{restarted:.1f} s"
    )
    assert restarted < RECOVERY_LIMIT_S
    assert recovery < RECOVERY_LIMIT_S


def test_one_model_worker_sigkilled_is_replaced(sup):
    victim = sup.model_workers()[0]
    victim.kill()
    started = time.monotonic()
    answered = predict(sup.url, timeout=30)
    wait_until(
        lambda: victim.pid not in (live := {p.pid for p in sup.model_workers()}) and len(ready_pids(sup) & live) >= 2,
        RECOVERY_LIMIT_S,
        "a replacement worker, ready",
        0.2,
    )
    print(
        f"SIGKILL one worker (pid {victim.pid}): /predict meanwhile -> {answered.status_code}; two ready workers "
        f"again after {time.monotonic() - started:.1f} s"
    )
    assert answered.status_code == 200


def test_redis_sigkilled_in_flight_get_answer_or_explicit_error_then_recovers(sup):
    redis_pid = sup.program_pid("redis")
    deadline_s = 30 + 5 + 5  # REQUEST_TIMEOUT_S + MAX_QUEUE_WAIT_S + slack: never a hang past the deadline
    with ThreadPoolExecutor(20) as pool:
        futures = [
            pool.submit(lambda i: (time.monotonic(), predict(sup.url, unique_jpeg(i), timeout=deadline_s)), i)
            for i in range(20)
        ]
        time.sleep(0.3)
        os.kill(redis_pid, signal.SIGKILL)
        killed = time.monotonic()
        outage = []
        while time.monotonic() - killed < 1.0:  # during the outage: fast 503s (until supervisord restarts Redis)
            t0 = time.monotonic()
            r = predict(sup.url, timeout=10)
            outage.append((r.status_code, time.monotonic() - t0))
            if r.status_code == 200:
                break
        in_flight = Counter()
        for f in futures:
            try:
                _, r = f.result()
                in_flight[r.status_code] += 1
            except requests.RequestException as exc:
                in_flight[type(exc).__name__] += 1
    recovery = recover(sup, "SIGKILL of redis")
    print(
        f"SIGKILL redis: 20 in flight -> {dict(in_flight)}; during the outage {[(c, round(t, 3)) for c, t in outage]}; "
        f"correct answers again {time.monotonic() - killed:.1f} s after the kill"
    )
    assert set(in_flight) <= {200, 503, 504}, in_flight
    assert all(code in (200, 503) and t < 3 for code, t in outage), outage
    assert recovery < RECOVERY_LIMIT_S


def test_programs_start_on_supervisords_first_turn(sup):
    """run.sh wakes supervisord's first loop turn (deploy/supervisor/wake.py): the programs are spawned at once,
    not after the 1 s that turn otherwise waits for an event."""
    log = (sup.run_dir / "logs" / "supervisord.log").read_text()
    started = re.search(r"^(\S+ \S+) INFO supervisord started", log, re.M)
    assert started, log[-2000:]
    spawned = re.search(r"^(\S+ \S+) INFO spawned: ", log[started.end() :], re.M)
    assert spawned, log[-2000:]
    gap = (_logged_at(spawned[1]) - _logged_at(started[1])).total_seconds()
    print(f"supervisord started its first program {gap * 1000:.0f} ms after it started")
    assert gap < 0.9


def _logged_at(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


# --- stop ------------------------------------------------------------------------------------------------------


def test_sigterm_to_the_process_group_stops_everything(sup):
    groups = {name: sup.program_pid(name) for name in ("redis", "model", "gunicorn", "nginx")}
    started = time.monotonic()
    code = sup.stop(signal.SIGTERM)
    stopped = time.monotonic() - started
    # multiprocessing's resource tracker leaves a few ms after the model service's parent: allow 5 s
    left = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = {name: members for name, pgid in groups.items() if (members := sup.group_members(pgid))}
        if not left:
            break
        time.sleep(0.1)
    print(
        f"SIGTERM to make run's process group: supervisord exited {code} after {stopped:.1f} s; processes left {left}"
    )
    assert code == 0
    assert not any(left.values()), left
    for port in (sup.port, sup.redis_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def test_ctrl_c_stops_everything(tmp_path):
    """Ctrl-C in the terminal: SIGINT to the foreground process group (make's, here run.sh's)."""
    s = Stack(tmp_path, env=HEARTBEAT, workers=1).start()
    groups = {name: s.program_pid(name) for name in ("redis", "model", "gunicorn", "nginx")}
    started = time.monotonic()
    code = s.stop(signal.SIGINT)
    wait_until(lambda: not any(s.group_members(pgid) for pgid in groups.values()), 5, "every program's processes gone")
    print(
        f"SIGINT (Ctrl-C) to make run's process group: supervisord exited {code} after "
        f"{time.monotonic() - started:.1f} s; nothing left"
    )
    assert code == 0


@pytest.mark.parametrize("setting", ["PORT", "NGINX_METRICS_PORT"])
def test_a_port_nginx_needs_already_taken_stops_the_start_naming_its_setting(tmp_path, setting):
    """Both of nginx's listeners are checked before anything starts: nginx would otherwise fail to bind and be
    restarted by supervisord in a loop, the reason only in its log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = Stack(tmp_path, model=False)
        setattr(s, {"PORT": "port", "NGINX_METRICS_PORT": "nginx_metrics_port"}[setting], port)
        s.launch()
        try:
            code = s.proc.wait(60)
        finally:
            s.stop()
    said = (tmp_path / "run.sh.log").read_text()
    assert code == 1 and f"127.0.0.1:{port} is already in use" in said and f"another {setting}" in said, said
    assert not (s.run_dir / "supervisord.conf").exists(), "it went on to render the configs"
