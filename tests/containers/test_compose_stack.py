"""docker-compose.yml really built and run: Redis, the API and two model containers at `cpus: 1`, checked only
through the port published on 127.0.0.1. Runs from `make compose-test` (scripts/compose_test.sh builds first)."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import os
import signal
import struct
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml

from testkit.compose_stack import docker
from testkit.nginx_metrics import parse_refusals
from testkit.paths import PHOTOS
from testkit.paths import REPO as ROOT
from testkit.processes import wait_until

DOCKER_NETS = ipaddress.ip_network("198.19.0.0/16")
PHOTO_NAMES = sorted(p.name for p in PHOTOS.glob("*.jpg"))


def unique_jpeg(name: str) -> bytes:
    """The photo with a unique JPEG comment segment (COM) after SOI: same pixels, never the same bytes."""
    data = (PHOTOS / name).read_bytes()
    note = uuid.uuid4().hex.encode()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(note) + 2) + note + data[2:]


def predict(url: str, name: str, top_k: int = 5, timeout: float = 60) -> requests.Response:
    return requests.post(
        f"{url}/predict?top_k={top_k}", files={"file": (name, unique_jpeg(name), "image/jpeg")}, timeout=timeout
    )


def model_containers(compose) -> list[dict]:
    return [c for c in compose.containers("model") if c["State"]["Running"]]


@pytest.fixture(scope="module")
def keras_reference():
    """Keras' probabilities on the host (.venv-convert) for the same seeded weights the image was built from."""
    out = subprocess.run(
        [
            str(ROOT / ".venv-convert" / "bin" / "python"),
            "keras_reference.py",
            "--weights",
            "random:0",
            *[str(PHOTOS / n) for n in PHOTO_NAMES],
        ],
        cwd=ROOT / "conversion",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_every_container_has_a_passing_health_check(compose):
    containers = compose.containers()
    services = sorted(c["Config"]["Labels"]["com.docker.compose.service"] for c in containers)
    assert services.count("model") == 2 and {"api", "redis"} <= set(services), services
    for c in containers:
        assert c["Config"].get("Healthcheck", {}).get("Test"), f"{c['Name']} has no health check"
        health = c["State"]["Health"]
        assert health["Status"] == "healthy" and health["Log"][-1]["ExitCode"] == 0, (c["Name"], health["Log"][-1:])


def test_ports_on_loopback_and_networks_in_198_19(compose):
    assert compose.url.startswith("http://127.0.0.1:")
    for c in compose.containers():
        for bindings in (c["HostConfig"].get("PortBindings") or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), (c["Name"], bindings)
        for net in c["NetworkSettings"]["Networks"].values():
            assert ipaddress.ip_address(net["IPAddress"]) in DOCKER_NETS, (c["Name"], net["IPAddress"])
    addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    bridges = [line.split() for line in addresses.splitlines() if line.split()[1].startswith(("docker", "br-"))]
    assert bridges, addresses  # the engine's default bridge at least
    for fields in bridges:  # every bridge the engine made on the host, its default one included
        assert ipaddress.ip_interface(fields[3]).ip in DOCKER_NETS, f"Docker bridge outside 198.19.0.0/16: {fields}"


def test_nginx_counts_its_refusals_where_prometheus_scrapes_them(compose):
    """The observability profile's nginx target (deploy/observability/prometheus.yml), read inside nginx's
    container: the port answers, and one refusal counts once."""
    jobs = yaml.safe_load((ROOT / "deploy" / "observability" / "prometheus.yml").read_text())["scrape_configs"]
    [target] = next(j for j in jobs if j["job_name"] == "resnet-nginx")["static_configs"][0]["targets"]
    service, port = target.split(":")
    [nginx] = compose.containers(service)

    def counts():
        return parse_refusals(docker("exec", nginx["Id"], "curl", "-fsS", f"http://127.0.0.1:{port}/metrics"))

    before = counts()
    assert requests.get(compose.url + "/predict?" + "a" * 9000, timeout=10).status_code == 414
    assert counts() - before == {("uri_too_large", "414"): 1}


def test_page_is_served(compose):
    page = requests.get(compose.url + "/", timeout=10)
    assert page.status_code == 200 and "<form" in page.text and 'type="file"' in page.text


def test_ready_lists_two_workers_of_one_thread_each(compose):
    ready = compose.ready_details()
    assert ready["status"] == "ready" and ready["workers_ready"] == 2, ready
    hosts = {c["Config"]["Hostname"] for c in model_containers(compose)}
    assert {w["host"] for w in ready["workers"]} == hosts and len(hosts) == 2, (ready, hosts)
    assert [w["threads"] for w in ready["workers"]] == ["1", "1"], ready  # cpus: 1 → 1 process × 1 thread
    for c in model_containers(compose):
        assert c["HostConfig"]["NanoCpus"] == 1_000_000_000, c["HostConfig"]["NanoCpus"]


def test_predict_equals_keras_on_the_same_seeded_weights(compose, keras_reference):
    container = model_containers(compose)[0]
    card = json.loads(docker("exec", container["Id"], "cat", "/src/artifacts/model_card.json"))
    assert card["weights"]["request"] == "random:0"  # the conversion's own parity record, made in the build
    assert card["parity"]["top1_agreement"] == 1.0
    assert card["parity"]["max_abs_diff_probs"] <= card["parity"]["tolerance_probs"]
    assert card["weights"]["sha256"] == keras_reference["weights_sha256"], "image built from other weights"
    labels = json.loads((ROOT / "model" / "imagenet_class_index.json").read_text())
    tol = keras_reference["tolerance_probs"]
    for name in PHOTO_NAMES:
        answer = predict(compose.url, name).json()
        probs = keras_reference["probabilities"][name]
        assert answer["success"] and abs(answer["score"] - max(probs)) <= tol, (name, answer["score"], max(probs))
        for item in answer["top_k"]:
            label, score = (item["label"], item["score"]) if isinstance(item, dict) else item[:2]
            candidates = [probs[int(i)] for i, (_, lab) in labels.items() if lab == label]
            assert candidates and min(abs(score - p) for p in candidates) <= tol, (name, label, score)


def test_feedback_rows_land_in_the_volume(compose):
    marker = f"compose-{uuid.uuid4().hex[:8]}.jpg"
    resp = requests.post(
        compose.url + "/feedback", data={"filename": marker, "prediction": "tabby", "score": "0.5"}, timeout=10
    )
    assert resp.status_code == 200
    volume = next(m["Name"] for m in compose.containers("api")[0]["Mounts"] if m["Destination"] == "/src/feedback")
    image = compose.env["PYTHON_IMAGE"]
    text = docker(
        "run", "--rm", "--network", "none", "-v", f"{volume}:/feedback:ro", image, "cat", "/feedback/feedback.csv"
    )
    columns = ("timestamp", "filename", "prediction", "score")  # api/feedback.py COLUMNS; the file has no header row
    rows = [r for r in csv.DictReader(io.StringIO(text), fieldnames=columns) if r["filename"] == marker]
    assert [(r["prediction"], r["score"]) for r in rows] == [("tabby", "0.5")]


def test_model_image_has_its_runtimes_and_no_tensorflow(compose):
    image = model_containers(compose)[0]["Image"]
    probe = (
        "import importlib.util as u; print(u.find_spec('tensorflow') is None, u.find_spec('onnxruntime') is not None,"
        " u.find_spec('openvino') is not None)"  # RUNTIME=openvino works in the image too
    )
    assert docker("run", "--rm", "--network", "none", image, "python", "-c", probe).split() == ["True"] * 3
    sizes = {c["Config"]["Labels"]["com.docker.compose.service"]: c["Image"] for c in compose.containers()}
    for service in ("api", "model"):
        size = int(docker("image", "inspect", "-f", "{{.Size}}", sizes[service]).strip())
        print(f"{service} image: {size / 1e6:.0f} MB")


def test_killed_model_container_restarts_and_loses_nothing(compose):
    victim = model_containers(compose)[0]
    restarts = victim["RestartCount"]
    names = [PHOTO_NAMES[i % len(PHOTO_NAMES)] for i in range(32)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(predict, compose.url, n, 1, 90) for n in names]
        wait_until(lambda: any(f.done() for f in futures), 60, "the first answer")
        os.kill(victim["State"]["Pid"], signal.SIGKILL)  # the container's init: ml_service.py and its workers
        in_flight = sum(not f.done() for f in futures)
        answers = [f.result() for f in futures]
    assert in_flight >= 8, f"only {in_flight} requests were in flight when the container was killed"
    assert [a.status_code for a in answers] == [200] * len(names), [
        a.text[:200] for a in answers if a.status_code != 200
    ]
    assert all(a.json()["success"] for a in answers)

    def restarted() -> bool:
        state = json.loads(docker("inspect", victim["Id"]))[0]
        return state["RestartCount"] > restarts and state["State"].get("Health", {}).get("Status") == "healthy"

    wait_until(restarted, 240, "the killed model container restarted by its policy and healthy again", interval=2)
    wait_until(lambda: compose.ready()["workers_ready"] == 2, 60, "/ready back to 2 workers", interval=1)
    assert predict(compose.url, "cat.jpg").json()["success"]


def test_down_leaves_nothing_behind(compose):
    compose.down()
    assert compose.leftovers() == {"containers": [], "networks": [], "volumes": []}
