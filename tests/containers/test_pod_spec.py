"""The dev overlay's pod templates run on real containers, constrained as the kubelet would constrain them
(testkit/k8s_pod.py): Redis, the API pod (nginx sidecar + gunicorn sharing one network namespace and a socket
volume) and a model pod, with the images scripts/compose_images.sh built. Checks the probes, /predict through the
sidecar, stalled uploads beside gunicorn's threads, bursts of huge rotated JPEGs (uploads, and Open Inference
Protocol bodies as large as admitted) under the API's memory limit, the dev Redis' eviction policy, and a SIGKILLed
model container replaced by its restart policy. Runs from `make compose-test` / `make test`
(scripts/compose_test.sh) beside the compose test.
The host talks to the pods' addresses as a node's kubelet does (INPUT/OUTPUT, not FORWARD); traffic between the
pods crosses a network Docker created and keeps its own FORWARD rules for, so no rule of ours is needed."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from PIL import Image

from testkit import k8s_manifests
from testkit.compose_stack import docker
from testkit.images import encode
from testkit.k8s_manifests import one
from testkit.k8s_pod import Pod, container_env, host_addresses, session_from
from testkit.nginx_metrics import refusal_counts
from testkit.paths import PHOTOS, REPO
from testkit.processes import wait_until

PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "resnet-compose-test")
DOCKER_NETS = ipaddress.ip_network("198.19.0.0/16")
# 5792 x 5792 with EXIF orientation 6: the decoded image and its transposed copy (4 bytes a pixel each) just fit one
# process's 256 MiB decode budget, so every API process decodes one at a time at full cost and the rest wait or
# get 503: the container's memory limit must hold that worst case (a 6000 x 6000 one alone exceeds it: 400).
BURST, SIDE = 16, 5792
# The shared template admits /predict in a server of its own behind the buffering one (listen unix:...): only
# requests nginx holds whole take an admission slot. A single-server template counts uploads still arriving.
TWO_TIER = any("listen unix:" in t.read_text() for t in (REPO / "deploy" / "nginx" / "templates").glob("*.template"))
LABELS = {label for _, label in json.loads((REPO / "model" / "imagenet_class_index.json").read_text()).values()}


def project_image(service: str) -> str:
    """The image compose built for `service` (docker-compose 1.x names it project_service, v2 project-service)."""
    for name in (f"{PROJECT}-{service}", f"{PROJECT}_{service}"):
        if docker("images", "-q", name).strip():
            return name
    raise LookupError(f"no image for {service}: run scripts/compose_images.sh first")


def rotated_jpeg() -> bytes:
    """A SIDE x SIDE photo stored sideways with EXIF orientation 6 (the API must decode and turn all of it)."""
    image = Image.open(PHOTOS / "cat.jpg").convert("RGB").resize((SIDE, SIDE)).rotate(90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", quality=80, exif=exif)


def unique(jpeg: bytes) -> bytes:
    """Same pixels, never the same bytes (a COM segment after SOI): no answer comes from the response cache."""
    note = uuid.uuid4().hex.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(note) + 2) + note + jpeg[2:]


@pytest.fixture(scope="module")
def pods(tmp_path_factory):
    """Redis, API and model pods of the dev overlay on a Docker network of their own; removed afterwards."""
    if os.environ.get("COMPOSE_ENGINE_UNAVAILABLE"):
        pytest.skip(f"no Docker engine can run here: {os.environ['COMPOSE_ENGINE_UNAVAILABLE']}")
    t0 = time.monotonic()
    work = tmp_path_factory.mktemp("pods")
    docs = k8s_manifests.kustomize(k8s_manifests.prepared_tree(work) / "overlays" / "dev")
    images = {
        "resnet-api:latest": project_image("api"),
        "resnet-model:latest": project_image("model"),
        "resnet-nginx:latest": f"{PROJECT}-nginx-sidecar",
        "redis:7.4-alpine": os.environ.get("REDIS_IMAGE", "local/redis:7"),
    }
    network = f"k8s-pod-test-{uuid.uuid4().hex[:8]}"
    docker("network", "create", network)
    made: list[Pod] = []
    pause = images["redis:7.4-alpine"]  # any small image with `sleep` holds a pod's network namespace

    def pod(kind: str, name: str, aliases: tuple[str, ...]) -> Pod:
        spec = one(docs, kind, name)["spec"]["template"]["spec"]
        p = Pod(f"{network}-{name}", spec, docs, network, Path(work), images, pause, aliases)
        made.append(p)
        p.start()
        return p

    try:
        subnet = json.loads(docker("network", "inspect", network))[0]["IPAM"]["Config"][0]["Subnet"]
        assert ipaddress.ip_network(subnet).subnet_of(DOCKER_NETS), f"network {subnet} outside 198.19.0.0/16"
        redis = pod("StatefulSet", "redis", ("redis",))  # the headless Service's name
        wait_until(lambda: redis.probe("redis", "readinessProbe")[0], 60, "Redis ready", interval=0.5)
        model = pod("Deployment", "model", ())
        api = pod("Deployment", "api", ("api",))
        wait_until(lambda: api.probe("nginx", "readinessProbe")[0], 90, "API pod ready", interval=0.5)
        wait_until(lambda: model.probe("model", "startupProbe")[0], 180, "model pod started", interval=1)
        print(f"\npods ready in {time.monotonic() - t0:.0f} s (network {network}, {subnet})")
        yield {
            "redis": redis,
            "api": api,
            "model": model,
            "url": f"http://{api.ip}:8080",
            "docs": docs,
            "network": network,
        }
    except Exception:
        for p in made:
            print(p.logs())
        raise
    finally:
        for p in made:
            p.remove()
        docker("network", "rm", network, check=False)
        print(f"pod-spec module: {time.monotonic() - t0:.0f} s")


def test_every_probe_passes_as_the_kubelet_runs_it(pods):
    for pod in (pods["redis"], pods["api"], pods["model"]):
        for c in pod.spec["containers"]:
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                if kind in c:
                    passed, detail = pod.probe(c["name"], kind)
                    assert passed, (pod.name, c["name"], kind, detail)
            state = pod.inspect(c["name"])
            assert state["State"]["Running"] and state["RestartCount"] == 0, (c["name"], state["State"])
            assert state["HostConfig"]["ReadonlyRootfs"] and state["HostConfig"]["CapDrop"] == ["ALL"]


def listening_ports(pod: Pod, container: str) -> set[int]:
    """TCP ports listening in the pod's network namespace (/proc/net/tcp{,6}, state 0A), leaving out Docker's
    embedded DNS resolver on 127.0.0.11 (dockerd's, not the pod's: a cluster has no such listener)."""
    text = docker("exec", pod.containers[container], "cat", "/proc/net/tcp", "/proc/net/tcp6")
    ports = set()
    for line in text.splitlines():
        fields = line.split()  # "0: 00000000:1F90 00000000:0000 0A ..." (the header's first field is "sl")
        if len(fields) > 3 and fields[0].endswith(":") and fields[3] == "0A":
            address, port = fields[1].rsplit(":", 1)
            if address != "0B00007F":  # 127.0.0.11, little-endian hex
                ports.add(int(port, 16))
    return ports


def test_gunicorn_answers_only_through_the_sidecar(pods):
    api = pods["api"]
    declared = {p["containerPort"] for c in api.spec["containers"] for p in c.get("ports", [])}
    assert listening_ports(api, "api") == declared == {8080, 8081, 9100, 9145}, "gunicorn listens on a TCP port"
    listing = docker("exec", api.containers["nginx"], "ls", "/run/gunicorn")
    assert "gunicorn.sock" in listing.split()
    css = requests.get(pods["url"] + "/static/style.css", timeout=5)  # from the sidecar's image, not gunicorn
    assert css.status_code == 200 and css.content == (REPO / "api" / "static" / "style.css").read_bytes()


def test_slow_clients_beyond_every_gunicorn_thread_hold_none_of_them(pods):
    """More half-sent uploads than gunicorn has threads: nginx holds them all, gunicorn sees none of them."""
    api = pods["api"]
    env = container_env(api.container_spec("api"), pods["docs"])
    threads = int(env["GUNICORN_WORKERS"]) * int(env["GUNICORN_THREADS"])
    slow = threads + 8
    if int(env["PER_CLIENT_CONNECTIONS"]) <= slow:
        pytest.skip(f"PER_CLIENT_CONNECTIONS {env['PER_CLIENT_CONNECTIONS']} refuses {slow} sockets of one address")
    head = (
        b"POST /predict HTTP/1.1\r\nHost: pod\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    sockets = []
    try:
        for _ in range(slow):
            s = socket.create_connection((api.ip, 8080), timeout=5)
            s.sendall(head + b"-" * 1000)  # 1 % of the body, then silence
            sockets.append(s)
        time.sleep(1)  # every upload is in nginx's hands (or, without the sidecar, would hold a gunicorn thread)
        t0 = time.monotonic()
        passed, detail = api.probe("api", "livenessProbe")  # GET /health straight to gunicorn's socket
        assert passed, f"gunicorn's threads are held by stalled uploads: {detail}"
        page = requests.get(pods["url"] + "/", timeout=10)
        assert page.status_code == 200 and "<form" in page.text
        photo = unique((PHOTOS / "cat.jpg").read_bytes())
        predict = requests.post(pods["url"] + "/predict", files={"file": ("cat.jpg", photo)}, timeout=30)
        print(
            f"\nbeside {slow} stalled uploads: gunicorn /health and the page in {time.monotonic() - t0:.2f} s; "
            f"/predict {predict.status_code}"
        )
        if TWO_TIER:  # admission counts only whole requests: stalled uploads hold no /predict slot either
            assert predict.status_code == 200, predict.text[:300]
    finally:
        for s in sockets:
            s.close()


def test_the_sidecar_counts_its_refusals_on_the_port_prometheus_scrapes(pods):
    """The port the manifests name nginx-metrics (the ServiceMonitor's and the pod discovery's) serves
    nginx_refusals_total; one refusal counts once."""
    api = pods["api"]
    [port] = [p["containerPort"] for p in api.container_spec("nginx")["ports"] if p["name"] == "nginx-metrics"]
    metrics = f"http://{api.ip}:{port}/metrics"
    before = refusal_counts(metrics)
    assert requests.get(pods["url"] + "/predict?" + "a" * 9000, timeout=10).status_code == 414
    assert refusal_counts(metrics) - before == {("uri_too_large", "414"): 1}


def test_dev_redis_runs_volatile_lru_without_its_password_on_the_command_line(pods):
    redis = pods["redis"]
    cid = redis.containers["redis"]
    policy = docker("exec", cid, "redis-cli", "--no-auth-warning", "config", "get", "maxmemory-policy").split()
    assert policy == ["maxmemory-policy", "volatile-lru"]
    maxmemory = int(docker("exec", cid, "redis-cli", "--no-auth-warning", "config", "get", "maxmemory").split()[1])
    assert 0 < maxmemory < redis.inspect("redis")["HostConfig"]["Memory"]
    password = container_env(redis.container_spec("redis"), pods["docs"])["REDIS_PASSWORD"]
    for pid in docker("exec", cid, "sh", "-c", "ls -d /proc/[0-9]*").split():
        cmdline = subprocess.run(["docker", "exec", cid, "cat", f"{pid}/cmdline"], capture_output=True, check=False)
        assert password.encode() not in cmdline.stdout, f"password on the command line of {pid}"


def test_predict_through_the_sidecar_with_its_own_request_start(pods):
    photo = unique((PHOTOS / "cat.jpg").read_bytes())
    # A client claiming it has waited 10 minutes would be shed by the API if nginx passed the header on.
    forged = {"X-Request-Start": f"t={time.time() - 600:.3f}"}
    answer = requests.post(
        pods["url"] + "/predict", files={"file": ("cat.jpg", photo, "image/jpeg")}, headers=forged, timeout=60
    )
    assert answer.status_code == 200, answer.text[:300]
    body = answer.json()
    assert body["success"] and body["prediction"] in LABELS and 0 < body["score"] <= 1, body


def burst(pods, count: int, send: Callable[[requests.Session, int], requests.Response], what: str) -> list:
    """`count` requests at once (`send(session, i)`), from enough client addresses that PER_CLIENT_INFLIGHT is not
    what stops them, while the API container's anonymous memory is sampled. Neither the API nor the model container
    may be OOM-killed or restarted, no process in the API container either, and both API probes pass afterwards.
    Returns the answers."""
    api = pods["api"]
    limit = api.inspect("api")["HostConfig"]["Memory"]
    per_client = int(container_env(api.container_spec("nginx"), pods["docs"]).get("PER_CLIENT_INFLIGHT", count))
    stack = contextlib.ExitStack()
    addresses = stack.enter_context(host_addresses(pods["network"], -(-count // per_client))) or [None]
    sessions = [session_from(a) for a in addresses]
    idle, kills = api.anon_memory("api"), api.oom_kills("api")
    assert kills is not None, "the API container's memory cgroup cannot be read: this test would be blind"
    peak, done = [idle or 0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], api.anon_memory("api") or 0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    try:
        with stack, ThreadPoolExecutor(count) as pool:
            answers = list(pool.map(lambda i: send(sessions[i % len(sessions)], i), range(count)))
    finally:
        done.set()
        sampler.join(5)
    print(
        f"\nburst of {count} {what} from {len(sessions)} client addresses: {[a.status_code for a in answers]} in "
        f"{time.monotonic() - t0:.1f} s; API container anonymous memory {(idle or 0) / 2**20:.0f} MiB before, "
        f"peak {peak[0] / 2**20:.0f} MiB, limit {limit / 2**20:.0f} MiB"
    )
    state = api.inspect("api")
    assert not state["State"]["OOMKilled"] and state["RestartCount"] == 0, state["State"]
    assert api.oom_kills("api") == kills, "the OOM killer killed a process of the API container (a gunicorn worker)"
    model = pods["model"].inspect("model")
    assert not model["State"]["OOMKilled"] and model["RestartCount"] == 0, model["State"]
    assert api.probe("api", "livenessProbe")[0] and api.probe("nginx", "readinessProbe")[0]
    return answers


def test_burst_of_huge_rotated_jpegs_does_not_oom_the_api(pods):
    jpeg = rotated_jpeg()

    def send(session: requests.Session, i: int) -> requests.Response:
        files = {"file": (f"big{i}.jpg", unique(jpeg), "image/jpeg")}
        return session.post(pods["url"] + "/predict", files=files, timeout=120)

    answers = burst(pods, BURST, send, f"{SIDE}x{SIDE} rotated JPEGs ({len(jpeg) / 1e6:.1f} MB each)")
    statuses = [a.status_code for a in answers]
    # 200, or a clear refusal: 400 when one such image alone exceeds the decode budget (a budget that counts the
    # EXIF-transposed copy), 503 + Retry-After when others hold the budget or the per-client limit is reached.
    assert set(statuses) <= {200, 400, 503}, [a.text[:200] for a in answers if a.status_code not in (200, 400, 503)]
    for a in answers:
        body = a.json()
        assert body["success"] == (a.status_code == 200), body
        reason = body.get("error") or a.headers.get("X-Error")  # a 400 keeps the three keys, its reason in X-Error
        assert body["prediction"] in LABELS if a.status_code == 200 else reason, (a.status_code, body)


def test_admitted_open_inference_protocol_bodies_fit_the_api_memory_limit(pods):
    """As many Open Inference Protocol requests as nginx admits, each as large as MAX_CONTENT_LENGTH allows (items
    of huge rotated JPEGs): their bodies wait for the decode budget, every one held at once, and the container's
    memory limit (docs/deployment.md) holds them with the decode budgets full."""
    env = container_env(pods["api"].container_spec("api"), pods["docs"])
    count, limit = int(env["MAX_INFLIGHT"]), int(env["MAX_CONTENT_LENGTH"])
    url = pods["url"] + "/v2/models/resnet50"
    per_request = requests.get(url + "/config", timeout=10).json()["max_batch_size"]
    jpeg = rotated_jpeg()
    padding = bytes((limit - 4096) // per_request - len(jpeg) - 64)  # after the JPEG's end: decoded as the photo

    def send(session: requests.Session, i: int) -> requests.Response:
        items = [unique(jpeg) + padding for _ in range(per_request)]
        payload = b"".join(struct.pack("<I", len(item)) + item for item in items)
        size = {"binary_data_size": len(payload)}
        header = json.dumps(
            {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [per_request], "parameters": size}]}
        ).encode()
        headers = {"Inference-Header-Content-Length": str(len(header))}
        return session.post(url + "/infer", data=header + payload, headers=headers, timeout=120)

    what = f"V2 requests of {per_request} rotated JPEGs padded to {(len(jpeg) + len(padding)) / 2**20:.1f} MiB each"
    answers = burst(pods, count, send, what)
    # 200, or a clear refusal: 503 + Retry-After when the decode budget stayed full, 504 past the deadline.
    assert {a.status_code for a in answers} <= {200, 503, 504}, [a.text[:200] for a in answers if a.status_code >= 400]
    for a in answers:
        if a.status_code != 200:
            assert set(a.json()) == {"error"} and (a.status_code == 504 or a.headers["Retry-After"]), a.text[:200]


def test_sigkilled_model_container_is_replaced_and_serves(pods):
    model = pods["model"]
    before = model.inspect("model")
    os.kill(before["State"]["Pid"], signal.SIGKILL)  # as the OOM killer or a crash would, not `docker stop`
    t0 = time.monotonic()

    def replaced() -> bool:
        state = model.inspect("model")
        return state["RestartCount"] > before["RestartCount"] and state["State"]["Running"]

    wait_until(replaced, 60, "the killed model container restarted (restartPolicy: Always)", interval=0.5)
    wait_until(lambda: model.probe("model", "startupProbe")[0], 180, "the model container ready again", interval=1)
    print(f"\nmodel container replaced and ready in {time.monotonic() - t0:.1f} s")
    photo = unique((PHOTOS / "cat.jpg").read_bytes())
    answer = requests.post(pods["url"] + "/predict", files={"file": ("cat.jpg", photo, "image/jpeg")}, timeout=60)
    assert answer.status_code == 200 and answer.json()["success"], answer.text[:300]
