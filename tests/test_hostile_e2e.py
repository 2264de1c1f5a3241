"""Hostile clients against the stack as `make run` starts it (default settings, two model workers): tricklers,
greedy clients, huge forms, page uploads that would fill Redis, costly JPEGs, a Redis without its password.

Every test prints what it sent, what came back and how long it took (docs/operations.md, "What survives what").
Clients bind their own loopback source addresses (Linux routes all of 127/8 to lo) to act as distinct clients.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import stat
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import redis
import requests
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from testkit.framing_cases import answers_in, exchange, framing_cases
from testkit.images import many_scan_jpeg, oriented_jpeg
from testkit.nginx_metrics import declared_answers
from testkit.paths import PHOTOS, REPO
from testkit.processes import wait_until
from testkit.stack import Stack

pytestmark = pytest.mark.timeout(600)
CAT = (PHOTOS / "cat.jpg").read_bytes()
PROGRAMS = ("redis", "model", "gunicorn", "nginx")


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    s = Stack(
        tmp_path_factory.mktemp("hostile"), env={"HEARTBEAT_INTERVAL_S": "0.5", "HEARTBEAT_TTL_S": "3"}, workers=2
    )
    with s.running():
        yield s


@pytest.fixture(scope="module")
def authed(sup) -> redis.Redis:
    """A client of the stack's Redis with the password `make run` generated."""
    return sup.redis_client(socket_timeout=5)


# --- clients -------------------------------------------------------------------------------------------------------

_n = iter(range(10**9))


def unique_jpeg() -> bytes:
    """The cat photo with bytes after its end marker: decodes the same, never a response-cache hit."""
    return CAT + f"unique-{next(_n)}-{uuid.uuid4().hex}".encode()


def multipart(fields: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, data, ctype) in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def raw_upload() -> bytes:
    """A whole `POST /predict` of a unique photo, as bytes to send on a socket of one's own."""
    body, ctype = multipart({"file": ("cat.jpg", unique_jpeg(), "image/jpeg")})
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Client:
    """One client address: HTTP/1.1 requests from `source` (a 127/8 address) to nginx."""

    def __init__(self, sup: Stack, source: str = "127.0.0.1") -> None:
        self.port, self.source = sup.port, source

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict | None = None, timeout: float = 60
    ) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout, source_address=(self.source, 0))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def raw(self, data: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
        """Bytes as they are, for requests http.client would refuse to send."""
        with socket.create_connection(("127.0.0.1", self.port), timeout, source_address=(self.source, 0)) as sock:
            sock.sendall(data)
            response = http.client.HTTPResponse(sock)
            response.begin()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()

    def predict(self, data: bytes | None = None, name: str = "cat.jpg", **kw) -> tuple[int, dict, bytes]:
        body, ctype = multipart({"file": (name, data if data is not None else unique_jpeg(), "image/jpeg")})
        return self.request("POST", "/predict", body, {"Content-Type": ctype} | kw.pop("headers", {}), **kw)


def timed(fn, *args, **kwargs):
    started = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - started


def stack_rss_mib(sup: Stack) -> float:
    """Resident memory of every process of every program's process group (Redis, model, gunicorn, nginx)."""
    total = 0
    for name in PROGRAMS:
        for pid in sup.group_members(sup.program_pid(name)):
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                pass
    return total / 2**20


class PeakRss:
    """Samples the stack's RSS in a thread while the block runs."""

    def __init__(self, sup: Stack) -> None:
        self.sup, self.done = sup, threading.Event()

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = stack_rss_mib(self.sup)
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, stack_rss_mib(self.sup))
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(5)

    @property
    def growth(self) -> float:
        return self.peak - self.baseline


def normal_latency(client: Client, n: int = 5) -> float:
    times = sorted(timed(client.predict)[1] for _ in range(n))
    return times[len(times) // 2]


# --- admission and fairness ----------------------------------------------------------------------------------------


def test_tricklers_hold_no_admission_slot(sup):
    """40 clients each declare a 2 MB body and send it one byte every 2 s; a polite client beside them gets
    every one of its 15 sequential /predicts answered (200) within its normal latency."""
    polite = Client(sup, "127.0.0.3")
    baseline = normal_latency(polite)
    stop = threading.Event()
    tricklers = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", sup.port), timeout=5, source_address=("127.0.0.4", 0))
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 2000000\r\n\r\n--x"
        )
        tricklers.append(s)

    def trickle() -> None:
        while not stop.wait(2.0):
            for s in tricklers:
                try:
                    s.sendall(b"x")
                except OSError:
                    pass

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        time.sleep(1.0)  # every trickler's headers are in: under the old config each would hold a slot already
        results = [timed(polite.predict) for _ in range(15)]
        still_open = 0
        for s in tricklers:
            s.setblocking(False)
            try:
                s.recv(1)  # an answer or a close: the trickler was dealt with by something other than nginx's wait
            except BlockingIOError:
                still_open += 1  # nothing answered: the trickler costs nginx its socket only
            except OSError:
                pass
    finally:
        stop.set()
        feeder.join(5)
        for s in tricklers:
            s.close()
    codes = Counter(status for (status, _, _), _ in results)
    latencies = sorted(t for _, t in results)
    limit = max(5 * baseline, baseline + 2.0)
    print(
        f"tricklers: 40 connections x declared 2 MB at 1 B / 2 s; polite 15 sequential /predict -> {dict(codes)}, "
        f"latency median {latencies[7]:.2f} s max {latencies[-1]:.2f} s (alone: {baseline:.2f} s); "
        f"tricklers still waiting, unanswered: {still_open}/40"
    )
    assert codes == Counter({200: 15}), codes
    assert latencies[-1] <= limit, (latencies, baseline)
    assert still_open == 40


def test_greedy_client_does_not_starve_a_polite_one(sup):
    """64 connections from one address (spoofing X-Client-Addr and X-Request-Start, retrying at once) against one
    polite client from another address: the polite one gets >= 90 % of 20 answered; the greedy one gets 503s."""
    greedy, polite = Client(sup, "127.0.0.5"), Client(sup, "127.0.0.6")
    stop = threading.Event()
    greedy_codes: Counter = Counter()
    lock = threading.Lock()

    def hog(n: int) -> None:
        for i in range(400):
            if stop.is_set():
                return
            spoof = {"X-Client-Addr": f"10.{n}.{i % 250}.1", "X-Request-Start": f"t={time.time():.3f}"}
            try:
                status = greedy.predict(headers=spoof, timeout=30)[0]
            except OSError as exc:
                status = type(exc).__name__
            with lock:
                greedy_codes[status] += 1

    threads = [threading.Thread(target=hog, args=(n,), daemon=True) for n in range(64)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    results = []
    deadline = time.monotonic() + 120
    for _ in range(20):
        if time.monotonic() > deadline:
            break
        results.append(timed(polite.predict, timeout=30))
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(40)
    codes = Counter(status for (status, _, _), _ in results)
    shed = [h for (status, h, _), _ in results if status == 503]
    print(
        f"greedy: 64 connections from 127.0.0.5 (spoofed X-Client-Addr) -> {dict(greedy_codes)}; polite 20 sequential "
        f"from 127.0.0.6 -> {dict(codes)}, max latency {max(t for _, t in results):.2f} s"
    )
    assert codes[200] >= 0.9 * 20, codes
    assert greedy_codes[503] > 0 and set(greedy_codes) <= {200, 503}, greedy_codes
    assert all(h.get("retry-after") for h in shed)


def test_spoofed_request_start_is_not_trusted(sup):
    """A client claiming its request started an hour ago is neither shed nor timed out: nginx sets the stamp."""
    status, _, body = Client(sup, "127.0.0.7").predict(headers={"X-Request-Start": f"t={time.time() - 600:.3f}"})
    print(f"spoofed X-Request-Start (600 s ago) -> {status}")
    assert status == 200 and json.loads(body)["success"] is True


@pytest.mark.parametrize("path", ["/heatmap.png?rows=1&cols=1&cells=AA&w=8&h=8", "/feedback", "/"])
def test_rate_limited_routes_answer_429_with_retry_after(sup, path):
    """One address floods a route without an admission bound: beyond rate + burst, JSON 429 + Retry-After;
    another address is unaffected."""
    flooder, other = Client(sup, "127.0.1.1"), Client(sup, "127.0.1.2")
    method = "GET" if path.startswith("/heatmap") else "POST"
    body = json.dumps({"prediction": "x"}).encode() if path == "/feedback" else b""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def hit(client: Client) -> tuple[int, dict, bytes]:
        return client.request(method, path, body, headers, timeout=10)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: hit(flooder), range(60)))
    codes = Counter(status for status, _, _ in replies)
    limited = [(h, b) for status, h, b in replies if status == 429]
    other_status = hit(other)[0]
    print(
        f"rate limit {method} {path.split('?')[0]}: 60 requests at once from one address -> {dict(codes)}; "
        f"another address -> {other_status}"
    )
    assert limited and all(h.get("retry-after") and json.loads(b)["success"] is False for h, b in limited)
    assert set(codes) <= {200, 400, 429} | ({503} if path == "/" else set()), codes  # POST / is admitted too
    assert other_status != 429


# --- requests nginx refuses itself ---------------------------------------------------------------------------------

MALFORMED = {  # what a client sends to {path} -> the status nginx answers before any location or the API sees it
    "a NUL in the path": (b"GET {path}%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "no Host header": (b"GET {path} HTTP/1.1\r\n\r\n", 400),
    "two Content-Lengths": (
        b"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        400,
    ),
    "a broken chunked body": (b"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", 400),
    "headers over the limit": (b"GET {path} HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 400),
    "a URI over the limit": (b"GET {path}?" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "an unknown Transfer-Encoding": (b"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "HTTP/2 as text": (b"GET {path} HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "TRACE": (b"TRACE {path} HTTP/1.1\r\nHost: x\r\n\r\n", 501),  # nginx refuses it on every route
    "CONNECT": (b"CONNECT {path} HTTP/1.1\r\nHost: x\r\n\r\n", 501),  # and this one
    # nginx discards the body of a request it refused as the refusal's page is made: its framing may fail then
    "TRACE with a broken chunked body": (
        b"TRACE {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        400,
    ),
    # What gunicorn would refuse in its own HTML, had nginx passed it on:
    "a byte outside printable ASCII in the target": (b"GET {path}?a=\x80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "a control character in a header value": (b"GET {path} HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
    "Content-Type twice": (
        b"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\ncontent-type: a/b\r\nContent-Length: 0\r\n\r\n",
        400,
    ),
    "Content-Type twice, a header without a colon first": (  # nginx takes it as a header with an empty value
        b"POST {path} HTTP/1.1\r\nHost: x\r\nCon\r\nContent-Type: a/b\r\nContent-Type: a/b\r\nContent-Length: 0\r\n\r\n",
        400,
    ),
}


@pytest.mark.parametrize("path", ["/v2/models/resnet50/infer", "/predict", "/feedback"])
@pytest.mark.parametrize("case", MALFORMED)
def test_requests_nginx_refuses_itself_get_json_in_their_routes_shape(sup, case, path):
    """The Open Inference Protocol's {"error"} under /v2, /feedback's own shape there, the course's elsewhere;
    never nginx's HTML."""
    raw, status = MALFORMED[case]
    sent = raw.replace(b"{path}", path.encode())
    got, headers, body = Client(sup, "127.0.3.1").raw(sent)
    print(f"{case} to {path} -> {got} {headers.get('content-type')} {body[:100]!r}")
    answer = json.loads(body)
    assert got == status and headers["content-type"] == "application/json"
    if path.startswith("/v2"):
        assert set(answer) == {"error"} and answer["error"] and "x-error" not in headers  # the reason: in the body
    elif path == "/feedback" and not sent.startswith(b"GET /feedback%00"):  # that one names another route
        assert answer == {"success": False, "error": headers["x-error"]}
    else:
        assert answer["success"] is False and set(answer) <= {"success", "prediction", "score", "error"}
        assert headers["x-error"] and answer.get("error", headers["x-error"]) == headers["x-error"]  # one reason


def trickle(sup: Stack, head: bytes, hold_s: float) -> None:
    """Send `head` and nothing more for `hold_s` (nginx cuts such a client off after its 10 s timeouts)."""
    with socket.create_connection(("127.0.0.1", sup.port), 5, source_address=("127.0.3.5", 0)) as sock:
        sock.sendall(head)
        sock.settimeout(hold_s)
        with contextlib.suppress(OSError):
            sock.recv(1)


def test_nginx_counts_each_answer_it_makes_itself_once_by_refusal(sup):
    """Refusals from either nginx server are counted once each, by name and status, and so are the clients nginx
    cuts off mid-headers or mid-body (408); an answer from the API (its 200, 400, 404) is not nginx's and is not
    counted."""
    client = Client(sup, "127.0.3.4")
    before = sup.nginx_refusals()
    assert set(before) == declared_answers()  # every answer nginx can make itself, from the start (at 0 if need be)
    slow = [
        threading.Thread(target=trickle, args=(sup, head, 12))
        for head in (
            b"GET /health HTTP/1.1\r\nHost: x\r\n",
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab",
        )
    ]
    for t in slow:
        t.start()
    for path in ("/predict", "/v2/models/resnet50/infer"):
        for case, count in (("a URI over the limit", 2), ("two Content-Lengths", 1), ("HTTP/2 as text", 1)):
            raw, status = MALFORMED[case]
            for _ in range(count):
                assert client.raw(raw.replace(b"{path}", path.encode()))[0] == status
    huge = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
    assert client.raw(huge)[0] == 413
    assert client.request("GET", "/health")[0] == 200
    assert client.predict(b"not an image", name="x.jpg")[0] == 400
    assert client.request("GET", "/v2/models/nope")[0] == 404
    for t in slow:
        t.join(20)
    sup.stop_program("gunicorn")  # the admission server answers 503; the public server passes that answer on
    try:
        got, headers, _ = client.request("GET", "/health")
        assert got == 503 and headers["x-error"] == "API not reachable; retry later"
        counted = sup.nginx_refusals_since(before, 12)  # as many as the test sent to be refused, asserted below
    finally:  # (the wait's own /health may be refused as well, until gunicorn listens)
        sup.start_program("gunicorn")
        wait_until(lambda: client.request("GET", "/health")[0] == 200, 60, "gunicorn back", interval=0.2)
    print(f"counted: {dict(counted)}")
    assert counted == Counter(
        {
            ("uri_too_large", "414"): 4,
            ("malformed", "400"): 2,
            ("http_version", "505"): 2,
            ("too_large", "413"): 1,
            ("unavailable", "503"): 1,
            ("client_timeout", "408"): 2,
        }
    )
    scraped = requests.get(sup.nginx_metrics_url, timeout=5)
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    for method, path, status in (("GET", "/", 404), ("POST", "/nope", 404), ("TRACE", "/metrics", 405)):
        other = requests.request(method, sup.nginx_metrics_url.replace("/metrics", path), timeout=5)
        assert other.status_code == status and other.json() == {"error": "this listener serves GET /metrics only"}
    assert "nginx_refusals_total" not in requests.get(sup.url + "/metrics", timeout=5).text  # the API's


@pytest.mark.parametrize(
    "case, reason",
    [
        (
            "a byte outside printable ASCII in the target",
            "request target holds a byte outside printable ASCII; percent-encode it",
        ),
        ("a control character in a header value", "a header value holds a control character"),
        ("Content-Type twice", "Content-Type sent more than once"),
        ("Content-Type twice, a header without a colon first", "Content-Type sent more than once"),
    ],
)
def test_what_gunicorn_would_refuse_in_html_nginx_refuses_naming_why(sup, case, reason):
    """gunicorn follows RFC 9112 and 9110 more strictly than nginx: the public server refuses these first."""
    raw, _ = MALFORMED[case]
    before = sup.nginx_refusals()
    got, headers, _ = Client(sup, "127.0.3.6").raw(raw.replace(b"{path}", b"/predict"))
    assert got == 400 and headers["x-error"] == reason
    assert sum(sup.nginx_refusals_since(before, 1).values()) == 1


def test_a_body_nginx_cannot_buffer_is_a_json_503_and_served_once_it_can(sup):
    """A body over client_body_buffer_size (1 MiB) goes to nginx's temp folder; when nginx cannot write there (a
    full disk, a folder gone) its own 500 would be its HTML page. It is a fault, answered as one: 503 with
    Retry-After in the route's shape (a browser's page upload: back to the page, which says why), counted, and the
    same request is served once the folder is back."""
    client = Client(sup, "127.0.3.7")
    photo = unique_jpeg() + os.urandom(2 * 2**20)  # bytes after the JPEG's end: decodes as the cat
    body, ctype = multipart({"file": ("cat.jpg", photo, "image/jpeg")})
    temp = sup.run_dir / "nginx" / "client_body_temp"
    before = sup.nginx_refusals()
    temp.rename(temp.with_name("client_body_temp.away"))
    try:
        predict = client.request("POST", "/predict", body, {"Content-Type": ctype})
        # any body will do: nginx fails before the API would read its header
        v2 = client.request("POST", "/v2/models/resnet50/infer", photo, {"Inference-Header-Content-Length": "2"})
        page = client.request("POST", "/", body, {"Content-Type": ctype, "Accept": "text/html"})
        counted = sup.nginx_refusals_since(before, 3)
    finally:
        temp.with_name("client_body_temp.away").rename(temp)
    print(f"temp folder gone: /predict -> {predict[0]} {predict[2][:90]!r}; /v2 infer -> {v2[0]} {v2[2][:90]!r}")
    reason = "nginx could not handle this request (its error log says why); retry later"
    for (status, headers, answer), shape in (
        (predict, {"success": False, "prediction": None, "score": None}),
        (v2, {}),
    ):
        assert status == 503 and headers["content-type"] == "application/json" and headers["retry-after"]
        assert json.loads(answer) == shape | {"error": reason}
    assert page[0] == 303 and page[1]["location"] == "/?refused=internal_error"
    assert counted == Counter({("internal_error", "503"): 2, ("internal_error", "303"): 1})
    assert client.request("POST", "/predict", body, {"Content-Type": ctype})[0] == 200


def predict_requests_answered_by_the_api(sup: Stack) -> int:
    """All /predict answers the API has given (api_requests_total, every status), from its /metrics."""
    status, text = sup.api_get("/metrics")
    assert status == 200, text[:200]
    return int(
        sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "api_requests_total" and s.labels["endpoint"] == "/predict"
        )
    )


def test_a_client_that_half_closes_once_its_upload_is_sent_gets_its_answer(sup):
    """RFC 9112 lets a client close its sending side once the request is out (`nc -N`, some embedded clients):
    nginx must not take that for the client leaving while the API computes the answer."""
    done = exchange(sup.port, "127.0.3.9", raw_upload())
    [(status, _)] = answers_in(done.received)
    assert status == 200 and not done.hung
    expected = json.loads(Client(sup, "127.0.3.9").predict()[2])["prediction"]  # the same photo, a client that waits
    assert json.loads(done.received.split(b"\r\n\r\n", 1)[1])["prediction"] == expected


def test_clients_that_send_and_hang_up_stay_within_the_admission_bound(sup):
    """Three times the bound of uploads from 48 addresses (two each, within PER_CLIENT_INFLIGHT), each client closing
    its connection as soon as its upload is sent: gunicorn computes each request it gets all the same, so the
    admission slot is held until gunicorn answers. Only the bound reach the API; the rest are shed at once."""
    bound = sup.admission_bound
    flood = 3 * bound
    before, answered_before = sup.nginx_refusals()[("shed", "503")], predict_requests_answered_by_the_api(sup)

    def outcomes() -> tuple[int, int]:
        """(uploads the API answered, uploads nginx shed) since the flood began."""
        answered = predict_requests_answered_by_the_api(sup) - answered_before
        return answered, sup.nginx_refusals()[("shed", "503")] - before

    for i in range(flood):
        with socket.create_connection(("127.0.0.1", sup.port), 5, source_address=(f"127.0.8.{i % 48 + 1}", 0)) as sock:
            sock.sendall(raw_upload())
    wait_until(lambda: sum(outcomes()) >= flood, 60, "every upload shed by nginx or answered by the API", 0.2)
    reached, shed = outcomes()
    print(f"{flood} uploads, each client gone once it was sent (bound {bound}): {reached} to the API, {shed} shed")
    assert reached + shed == flood
    assert reached <= bound + 8, reached  # the bound, plus what was answered while the flood was being sent


def test_with_the_api_out_of_reach_a_browser_on_the_page_gets_nginxs_page_and_a_program_json(sup):
    """gunicorn stopped: the upload page itself cannot load, so a browser loading it or posting its forms gets a
    page of nginx's own (503, Retry-After, why, the request's ID, a link back), with a CSP of its own. A program on
    the same routes, and a browser on the JSON routes, get the JSON answer. Each is counted as `unavailable`."""
    client = Client(sup, "127.0.3.8")
    body, ctype = multipart({"file": ("cat.jpg", unique_jpeg(), "image/jpeg")})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    before = sup.nginx_refusals()
    sup.stop_program("gunicorn")
    try:
        pages = [
            client.request("GET", "/", headers={"Accept": BROWSER}),
            client.request("GET", "/?refused=busy", headers={"Accept": BROWSER}),
            client.request("POST", "/", body, {"Content-Type": ctype, "Accept": BROWSER}),
            client.request("POST", "/feedback", b"report=1&filename=a.jpg", form | {"Accept": BROWSER}),
        ]
        head = client.request("HEAD", "/", headers={"Accept": BROWSER})
        programs = {
            "GET /": client.request("GET", "/", headers={"Accept": "*/*"}),
            "POST / without Accept": client.request("POST", "/", body, {"Content-Type": ctype}),
            "POST / with JSON first": client.request("POST", "/", body, {"Content-Type": ctype, "Accept": JSON_FIRST}),
            "POST /predict": client.request("POST", "/predict", body, {"Content-Type": ctype, "Accept": BROWSER}),
            "GET /v2/health/ready": client.request("GET", "/v2/health/ready", headers={"Accept": BROWSER}),
        }
        counted = sup.nginx_refusals_since(before, len(pages) + 1 + len(programs))
    finally:  # (the wait's own /health may be refused as well, until gunicorn listens)
        sup.start_program("gunicorn")
        wait_until(lambda: client.request("GET", "/health")[0] == 200, 60, "gunicorn back", interval=0.2)
    print(f"API out of reach, a browser on the page: {pages[0][0]} {pages[0][1]['content-type']}")
    for status, headers, page in pages:
        text = page.decode()
        assert status == 503 and headers["content-type"] == "text/html; charset=utf-8", (status, headers)
        assert "<title>Service unavailable</title>" in text and "cannot be reached right now" in text
        assert f"Please try again in {int(headers['retry-after'])} s." in text  # what Retry-After says
        assert '<a href="/">' in text and f"<code>{headers['x-request-id']}</code>" in text
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-content-type-options"] == "nosniff"
    assert head[0] == 503 and head[1]["content-type"] == "text/html; charset=utf-8" and head[2] == b""
    for name, (status, headers, answer) in programs.items():
        assert status == 503 and headers["content-type"] == "application/json", name
        assert "content-security-policy" not in headers, name
        assert json.loads(answer)["error"] == "API not reachable; retry later", name
    assert counted == Counter({("unavailable", "503"): len(pages) + 1 + len(programs)})


@pytest.mark.parametrize("method", ["GE", "A" * 25])
def test_a_method_outside_gunicorns_convention_is_answered_by_the_api(sup, method):
    """nginx passes on any method of capital letters; the API, not gunicorn's HTML 400, answers one it lacks."""
    got, headers, body = Client(sup, "127.0.3.6").raw(f"{method} /health HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    reason = json.loads(body)["error"]  # the API names at most 20 characters of a method
    assert got == 405 and headers["content-type"] == "application/json" and reason.startswith(f"method {method[:20]} ")


PROBE_PATHS = [
    *("/", "/predict", "/feedback", "/heatmap.png?rows=1&cols=1&cells=AA&w=8&h=8", "/health", "/ready"),
    *("/ready/accept", "/ready/details", "/metrics", "/display/nope.jpg", "/uploads/x.jpg", "/nope", "/v2"),
    *("/v2/health/live", "/v2/models/resnet50", "/v2/models/resnet50/versions/1", "/v2/models/resnet50/ready"),
    *("/v2/models/resnet50/config", "/v2/models/resnet50/infer", "/v2/models/nope/infer", "/v2/repository/index"),
    *("/static/style.css", "/static/", "/static/nope.css", "/static/../app.py", "/_nginx/malformed"),
]
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JSON_FIRST = "application/json, text/html;q=0.5"  # a program that also takes HTML: JSON, as the API answers it


def is_wrong_answer(status: int, content_type: str, request_ids: int, html_errors_allowed: bool) -> bool:
    """What no answer may be: a 5xx other than "not implemented" (501, 505) or "retry" (503, 504), an answer
    without exactly one X-Request-ID, or an HTML error where the client does not take one."""
    return (
        (status >= 500 and status not in (501, 503, 504, 505))
        or request_ids != 1
        or (status >= 400 and "text/html" in content_type and not html_errors_allowed)
    )


PROBE_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "MKCOL", "TRACE", "CONNECT"]
PROBE_VARIANTS = {  # headers and a body that agree with them: nginx never waits for bytes that do not come
    "none": ({}, b""),
    "a JSON body": ({"Content-Type": "application/json"}, b'{"prediction": "x"}'),
    "a form": ({"Content-Type": "application/x-www-form-urlencoded"}, b"filename=a.jpg&prediction=x"),
    "multipart without a boundary": ({"Content-Type": "multipart/form-data"}, b"--x\r\n\r\n--x--\r\n"),
    "a chunked body": ({"Transfer-Encoding": "chunked"}, b"5\r\nhello\r\n0\r\n\r\n"),
    "Expect: 100-continue": ({"Expect": "100-continue", "Content-Type": "application/octet-stream"}, b"abc"),
    "a Range past the end": ({"Range": "bytes=99999-"}, b""),
    "If-Match another tag": ({"If-Match": '"other"'}, b""),
    "If-Modified-Since in 2100": ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, b""),
}


def test_every_route_method_and_body_answers_without_a_500_a_hang_or_html_for_programs(sup):
    """Every route (and paths that are none), every method, bodies and conditional headers, as programs send them
    (no Accept, `*/*`, JSON) and as a browser does. A 5xx only says what is not implemented (501, 505) or asks to
    retry (503, 504), never a 500; every answer comes within seconds and carries one X-Request-ID. A program's
    error is JSON, never HTML, with one exception, the course's page contract: `POST /` without a usable form gets
    the page's HTML 400 with its flash message (a browser gets the API's HTML errors). Sent from 50 non-local
    addresses (the local-only routes answer 403), so the per-address rate limits rarely refuse."""
    cases = [
        (path, method, variant, accept)
        for path in PROBE_PATHS
        for method in PROBE_METHODS
        for variant in PROBE_VARIANTS
        for accept in (None, "*/*", "application/json", BROWSER)
    ]

    def probe(index: int) -> tuple[tuple, int | str, str, int]:
        path, method, variant, accept = cases[index]
        headers, body = PROBE_VARIANTS[variant]
        headers = headers | ({"Accept": accept} if accept else {})
        conn = http.client.HTTPConnection(
            "127.0.0.1", sup.port, timeout=15, source_address=(f"127.0.5.{index % 50 + 1}", 0)
        )
        try:
            conn.request(method, path, body=body, headers=headers)  # Content-Length unless a Transfer-Encoding is set
            response = conn.getresponse()
            response.read()
            ids = len(response.msg.get_all("X-Request-ID", []))
            return cases[index], response.status, response.getheader("Content-Type", ""), ids
        except (OSError, http.client.HTTPException) as exc:  # a timeout included: nginx answers each of these at once
            return cases[index], type(exc).__name__, "", 0
        finally:
            conn.close()

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(probe, range(len(cases))))
    statuses = Counter(status for _, status, _, _ in answers)
    print(f"{len(cases)} requests in {time.monotonic() - started:.1f} s -> {dict(statuses)}")
    wrong = [
        (case, status, ctype, ids)
        for case, status, ctype, ids in answers
        if not isinstance(status, int)
        or is_wrong_answer(status, ctype, ids, case[3] == BROWSER or (case[:2], status) == (("/", "POST"), 400))
    ]
    assert not wrong, wrong[:20]


FRAMING_SEED, FRAMING_CASES = 20261206, 10_000


def test_broken_framing_never_gets_a_500_a_hang_html_for_a_program_or_a_crash(sup):
    """Seeded raw requests with broken framing (testkit/framing_cases.py: valid requests to every kind of route,
    each mutated one to three times, every fifth with a second request pipelined after it), from 50 addresses.
    Some say they are a browser's. Every connection ends within seconds of the client's half-close; no answer is
    wrong (is_wrong_answer; a program may get the page's own HTML 400); no process of the stack dies, and a photo
    is classified afterwards. A failure names the case and its mutations: the same seed sends the same bytes."""
    cases = framing_cases(FRAMING_SEED, FRAMING_CASES)
    pids = sup.program_pids()
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        sent = list(pool.map(lambda case: exchange(sup.port, f"127.0.6.{case.number % 50 + 1}", case.data), cases))
    statuses = Counter(status for done in sent for status, _ in answers_in(done.received))
    print(f"seed {FRAMING_SEED}: {len(cases)} cases in {time.monotonic() - started:.1f} s -> {dict(statuses)}")
    wrong = []
    for case, done in zip(cases, sent):
        for status, headers in answers_in(done.received):
            ctype, ids = " ".join(headers.get("content-type", [])), len(headers.get("x-request-id", []))
            if is_wrong_answer(status, ctype, ids, case.may_get_html_error(status)):
                wrong.append((case.number, case.seeds, case.mutations, status, headers.get("content-type")))
        if done.hung:
            wrong.append((case.number, case.seeds, case.mutations, f"open after {done.seconds:.1f} s"))
    assert not wrong, wrong[:20]
    assert sup.program_pids() == pids  # nothing crashed or was restarted
    assert Client(sup, "127.0.6.99").predict()[0] == 200


PASSED_ON = {  # requests at the public server's limits, which it passes on (one byte more and it refuses them)
    "the longest request line": b"GET /health?" + b"a" * (8190 - len("GET /health? HTTP/1.1")) + b" HTTP/1.1",
    "150 header fields": b"GET /health HTTP/1.1\r\n" + b"\r\n".join(b"X-%d: a" % i for i in range(150)),
    "a header line that grows on the way": b"GET /health HTTP/1.1\r\nX-Forwarded-For: " + b"1" * 8170,
}


@pytest.mark.parametrize("case", PASSED_ON)
def test_a_request_the_public_server_passes_on_is_answered_by_the_api(sup, case):
    """Every part behind the public server accepts at least what it passes on, so a request within nginx's limits
    never meets a second refusal in HTML: the admission server's 400 (X-Forwarded-For gains the client's address
    on the way), gunicorn's 414 (a line over 4 KiB) or 431 (over 100 header fields)."""
    got, headers, body = Client(sup, "127.0.3.3").raw(PASSED_ON[case] + b"\r\nHost: x\r\n\r\n")
    assert got == 200 and json.loads(body) == {"status": "ok"}


@pytest.mark.parametrize(
    "request_line, status", [("GET /health", 200), ("OPTIONS /", 200), ("GET /v2", 200), ("GET /predict", 405)]
)
def test_an_http_1_0_request_without_host_is_answered_by_the_api(sup, request_line, status):
    """HTTP/1.0 makes Host optional, and load balancers' health checks often send none (HAProxy's default check
    is `OPTIONS / HTTP/1.0`): the API answers them as any other, never nginx's HTML 400."""
    got, headers, body = Client(sup, "127.0.3.2").raw(f"{request_line} HTTP/1.0\r\n\r\n".encode())
    print(f"{request_line} HTTP/1.0 without Host -> {got} {headers.get('content-type')} {body[:80]!r}")
    assert got == status


@pytest.mark.parametrize(
    "accept, status",
    [("text/html,*/*;q=0.8", 303), ("application/json", 413), (JSON_FIRST, 413)],
)
def test_a_page_upload_too_large_for_nginx_sends_a_browser_back_to_the_page_saying_why(sup, accept, status):
    """nginx refuses the body before the app could flash a message: a browser is sent back to the page, which
    says why; a program gets the JSON 413, also one that accepts HTML after JSON (as the API answers it)."""
    client = Client(sup, "127.0.3.2")
    body, ctype = multipart({"file": ("big.jpg", bytes(16 * 2**20 + 1), "image/jpeg")})
    got, headers, answer = client.request("POST", "/", body, {"Content-Type": ctype, "Accept": accept}, timeout=30)
    print(f"page upload of 16 MiB + 1 with Accept {accept} -> {got} {headers.get('location')} {answer[:80]!r}")
    assert got == status
    if status == 303:
        assert headers["location"] == "/?refused=too_large"
        page = client.request("GET", headers["location"])
        assert page[0] == 200 and b"File too large: upload larger than the limit of 16777216 bytes" in page[2]
    else:
        assert json.loads(answer)["error"] == "upload larger than the limit of 16777216 bytes"


def test_a_browser_flooding_the_page_is_sent_back_to_it_saying_why(sup):
    flooder = Client(sup, "127.0.3.3")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: flooder.request("POST", "/", b"", {"Accept": "text/html"}), range(60)))
    codes = Counter(status for status, _, _ in replies)
    back = Counter(h["location"] for s, h, _ in replies if s == 303)
    print(f"60 page posts at once from one browser -> {dict(codes)}, sent back to {dict(back)}")
    assert back["/?refused=rate_limited"] and set(back) <= {"/?refused=rate_limited", "/?refused=busy"}
    page = flooder.request("GET", "/?refused=rate_limited")[2]
    assert b"Too many uploads from this address; please wait a moment and try again" in page


def test_a_browser_nginx_sheds_is_sent_back_to_the_page_saying_why(sup):
    """Page uploads from one browser beyond PER_CLIENT_INFLIGHT: the admission server sheds them, and a browser is
    sent back to the page with the reason instead of a JSON 503 (a program gets the 503, as
    test_greedy_client_does_not_starve_a_polite_one checks)."""
    browser = Client(sup, "127.0.3.8")

    def upload(_: int) -> tuple[int, dict, bytes]:
        body, ctype = multipart({"file": ("cat.jpg", unique_jpeg(), "image/jpeg")})
        return browser.request("POST", "/", body, {"Content-Type": ctype, "Accept": "text/html"})

    before = sup.nginx_refusals()
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(upload, range(12)))  # within the page's rate burst (20): only the bound sheds
    codes = Counter(status for status, _, _ in replies)
    print(f"12 page uploads at once from one browser -> {dict(codes)}")
    assert set(codes) == {200, 303} and all(h["location"] == "/?refused=busy" for s, h, _ in replies if s == 303)
    assert sup.nginx_refusals_since(before, codes[303]) == Counter({("shed", "303"): codes[303]})
    page = browser.request("GET", "/?refused=busy")[2]
    assert b"The service is at its limit right now; please try again in" in page


# --- huge forms ----------------------------------------------------------------------------------------------------


def test_huge_urlencoded_forms_are_refused_fast_and_cost_no_memory(sup):
    """Four concurrent 15 MB url-encoded bodies to /feedback and to /: 413 / 400 in under a second each."""
    body = b"a=b&" * (15 * 2**20 // 4)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}

    def send(n: int):  # eight addresses: POST / also passes the per-client admission bound
        return timed(Client(sup, f"127.0.2.{n + 1}").request, "POST", "/feedback" if n < 4 else "/", body, headers, 30)

    with PeakRss(sup) as rss:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(8)))
    summary = [(status, round(t, 2)) for (status, _, _), t in results]
    print(f"huge forms: 4 x 15 MB url-encoded to /feedback and 4 to / -> {summary}; stack RSS +{rss.growth:.0f} MiB")
    assert all(status == 413 for (status, _, _), _ in results[:4]), summary
    assert all(status in (400, 413) for (status, _, _), _ in results[4:]), summary
    assert all(t < 1.0 for _, t in results), summary
    assert rss.growth <= 50, rss.growth


def test_feedback_json_client_gets_json_errors(sup):
    client = Client(sup, "127.0.2.2")
    big = client.request(
        "POST", "/feedback", json.dumps({"prediction": "x" * 20000}).encode(), {"Content-Type": "application/json"}
    )
    broken = client.request("POST", "/feedback", b"{not json", {"Content-Type": "application/json"})
    print(f"feedback JSON errors: 20 kB -> {big[0]} {big[1].get('content-type')}; broken -> {broken[0]}")
    assert big[0] == 413 and json.loads(big[2])["success"] is False
    assert broken[0] == 400 and json.loads(broken[2])["success"] is False


# --- page uploads and Redis memory ---------------------------------------------------------------------------------


def ten_mb_jpeg() -> bytes:
    """A noisy JPEG of about 10 MB (made unique per upload by bytes after its end marker)."""
    import numpy as np

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (3000, 3000, 3), dtype=np.uint8))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95)
    return out.getvalue()


def test_page_uploads_do_not_fill_redis(sup, authed):
    """24 unique ~10 MB page uploads: Redis grows by a few MiB at most, nothing is evicted, /ready stays 200 and
    every page still shows its image."""
    import re

    base = ten_mb_jpeg()
    assert len(base) > 9 * 2**20
    before, earlier = authed.info(), set(authed.keys("ml:display:*"))  # other tests' page uploads
    shown, ready = Counter(), Counter()
    t0 = time.monotonic()
    for i in range(24):
        client = Client(sup, f"127.0.3.{i % 4 + 1}")  # four browsers: the page's rate limit is per client
        body, ctype = multipart(
            {"file": (f"big{i}.jpg", base + f"unique-{i}-{uuid.uuid4().hex}".encode(), "image/jpeg")}
        )
        status, _, page = client.request("POST", "/", body, {"Content-Type": ctype}, timeout=60)
        assert status == 200, (status, page[:300])
        src = re.search(rb'src="(/display/[^"]+)"', page).group(1).decode()
        img_status, headers, _ = client.request("GET", src)
        shown[(img_status, headers.get("content-type", "").split(";")[0])] += 1
        ready[requests.get(sup.url + "/ready", timeout=5).status_code] += 1
    after = authed.info()
    renditions = [len(authed.get(k) or b"") for k in set(authed.keys("ml:display:*")) - earlier]
    growth = (after["used_memory"] - before["used_memory"]) / 2**20
    evicted = after["evicted_keys"] - before["evicted_keys"]
    print(
        f"page uploads: 24 x {len(base) / 2**20:.1f} MB in {time.monotonic() - t0:.1f} s -> Redis used_memory "
        f"+{growth:.1f} MiB, evicted_keys +{evicted}, display renditions {len(renditions)} of at most {max(renditions) / 1e3:.0f} kB, "
        f"/ready {dict(ready)}, page images {dict(shown)}"
    )
    assert growth <= 16 and evicted == 0
    assert len(renditions) == 24 and max(renditions) < 200_000  # the page's rendition, never the upload
    assert ready == Counter({200: 24})
    assert shown == Counter({(200, "image/jpeg"): 24})


# --- costly images -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [6000, 4500])
def test_rotated_huge_jpegs_stay_within_memory(sup, side):
    """16 concurrent side x side orientation-6 JPEGs (two full-size copies each when decoded) from four addresses:
    6000 needs 275 MiB, over the 256 MiB budget (400); 4500 needs 155 MiB, decoded one at a time per process."""
    data = oriented_jpeg(side, side, orientation=6)
    clients = [Client(sup, f"127.0.4.{i + 1}") for i in range(4)]
    with PeakRss(sup) as rss:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: timed(clients[i % 4].predict, data, "r.jpg", timeout=60), range(16)))
    codes = Counter(status for (status, _, _), _ in results)
    print(
        f"rotated: 16 x {side}x{side} orientation-6 JPEG ({len(data) / 1e3:.0f} kB) -> {dict(codes)} in at most "
        f"{max(t for _, t in results):.1f} s; stack RSS +{rss.growth:.0f} MiB"
    )
    assert set(codes) <= {200, 400, 503}, codes
    assert rss.growth <= 800, rss.growth
    if side == 4500:
        assert codes[200] >= 1, codes  # the budget admits such images, it does not refuse them all
    assert Client(sup, "127.0.4.9").predict()[0] == 200


def test_jpeg_with_2000_scans_is_refused_fast(sup):
    data = many_scan_jpeg(2000)
    (status, headers, body), took = timed(Client(sup, "127.0.5.1").predict, data, "scans.jpg", timeout=60)
    print(
        f"2,000-scan progressive JPEG ({len(data) / 1e3:.0f} kB; Pillow alone decodes it in ~18 s here) -> "
        f"{status} in {took:.2f} s: {headers.get('x-error')}"
    )
    assert 400 <= status < 500 and took < 2.0


# --- Redis and operator surfaces -----------------------------------------------------------------------------------


def test_redis_refuses_clients_without_the_password(sup, authed):
    password_file = sup.run_dir / "redis.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(sup.run_dir.stat().st_mode) == 0o700  # and the sockets behind nginx with it
    with socket.create_connection(("127.0.0.1", sup.redis_port), timeout=5) as raw:  # what any local user can do
        raw.sendall(b"SET ml:cache:forged x\r\n")
        reply = raw.recv(200)
    assert reply.startswith(b"-NOAUTH"), reply
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=sup.redis_port, socket_timeout=2).set("ml:cache:forged", "x")
    assert not authed.exists("ml:cache:forged")
    assert authed.ping()
    password = password_file.read_text().strip()
    for name in PROGRAMS:  # never on a command line
        for pid in sup.group_members(sup.program_pid(name)):
            try:
                assert password not in " ".join(psutil.Process(pid).cmdline())
            except psutil.Error:
                pass
    env = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}
    env |= {"RUN_DIR": str(sup.run_dir), "REDIS_PORT": str(sup.redis_port)}
    cli = subprocess.run([str(REPO / "scripts" / "redis_cli.sh"), "ping"], env=env, capture_output=True, timeout=10)
    print(f"redis: anonymous SET -> {reply.decode().strip()}; make redis-cli ping -> {cli.stdout.decode().strip()}")
    assert cli.stdout.decode().strip() == "PONG"


def test_public_ready_names_no_worker_details_only_local_ones_do(sup):
    public = requests.get(sup.url + "/ready", timeout=5).json()
    local = Client(sup, "127.0.0.1").request("GET", "/ready/details")
    remote = Client(sup, "127.0.6.1").request("GET", "/ready/details")
    print(f"/ready workers {public['workers']}; /ready/details local {local[0]}, from 127.0.6.1 {remote[0]}")
    assert public["workers_ready"] == 2 and not any({"pid", "name", "host"} & set(w) for w in public["workers"])
    assert local[0] == 200 and all(w["pid"] for w in json.loads(local[2])["workers"])
    assert remote[0] == 403 and json.loads(remote[2]) == {"error": "this route answers local clients only"}


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to gunicorn's unix socket, where nginx's admission server talks to it."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def test_session_cookie_is_secure_only_when_nginx_says_https(sup):
    """A client claiming https to nginx gets a plain cookie (nginx sets X-Forwarded-Proto from its own scheme);
    gunicorn trusts the header from its unix socket peer, so behind TLS the cookie is Secure."""
    form = {"Content-Type": "multipart/form-data; boundary=x"}
    through_nginx = Client(sup, "127.0.7.1").request("POST", "/", b"--x--\r\n", form | {"X-Forwarded-Proto": "https"})
    conn = UnixHTTPConnection(str(sup.run_dir / "gunicorn.sock"))
    try:
        conn.request("POST", "/", b"--x--\r\n", form | {"X-Forwarded-Proto": "https", "Host": "localhost"})
        behind_tls = conn.getresponse().getheader("Set-Cookie", "")
    finally:
        conn.close()
    spoofed = through_nginx[1].get("set-cookie", "")
    print(
        f"session cookie: client-claimed https via nginx -> {spoofed[-40:]!r}; https from nginx -> {behind_tls[-40:]!r}"
    )
    assert "session=" in spoofed and "Secure" not in spoofed
    assert "session=" in behind_tls and "Secure" in behind_tls
