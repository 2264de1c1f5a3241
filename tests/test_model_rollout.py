"""Rolling a new model version out under load, rolling back by a live pin, and refusing a bad INT8 model.

The stack runs as `make run` starts it (scripts/run.sh under supervisord) with 2 workers serving a model repository
whose version 1 is the seeded random:0 model. 4 clients send unique bytes continuously (each PNG carries a unique
text chunk, so its pixels, and therefore its reference answer, are those of one of 5 base images) while
scripts/ensure_model.sh (what `make model` runs) adds version 2 from random:1 weights beside it. Reference answers:
the worker's own Classifier on the converted fp32 ONNX of each version, run here on the same preprocessed pixels
(testkit/model_reference.py; the conversion itself asserts that ONNX equals Keras on these weights).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from testkit.calibration import write_disagreeing_calibration_set
from testkit.model_reference import reference_answers
from testkit.paths import PHOTOS, converted_model_dir, seeded_model_cache
from testkit.processes import wait_until
from testkit.stack import Stack, make_model

POLL_S = 2.0
CLIENTS = 4
BASES = sorted(p.name for p in PHOTOS.glob("*.jpg"))
SCORE_TOLERANCE = 2e-3  # batch composition changes the last float bits; answers are rounded to 4 decimals


def png(photo: str, tag: str = "") -> bytes:
    """The photo as a PNG; `tag` goes into a text chunk: other bytes, same pixels."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if tag:
        info.add_text("request", tag)
    out = io.BytesIO()
    Image.open(PHOTOS / photo).convert("RGB").resize((256, 256)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def link_folder(src: Path, dest: Path) -> None:
    """A copy made of hard links, written beside `dest` and renamed into place (as a repository version is)."""
    tmp = dest.with_name(f".tmp-{dest.name}-{os.getpid()}")
    tmp.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_file():
            os.link(path.resolve(), tmp / path.name)
    os.rename(tmp, dest)


@dataclass
class Answer:
    started: float
    status: int
    version: str
    base: str
    body: dict


class Clients:
    """CLIENTS threads, each from its own loopback address, posting unique bytes until stopped (bounded)."""

    def __init__(self, url: str, max_requests: int = 3000, max_s: float = 600) -> None:
        self.url, self.max_requests, self.deadline = url, max_requests, time.monotonic() + max_s
        self.answers: list[Answer] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def _run(self, i: int) -> None:
        import urllib3

        pool = urllib3.PoolManager(source_address=(f"127.0.0.{20 + i}", 0), retries=False)
        n = 0
        while not self.stop.is_set() and n < self.max_requests and time.monotonic() < self.deadline:
            base = BASES[(n + i) % len(BASES)]
            data = png(base, f"client {i} request {n}")
            started = time.monotonic()
            try:
                r = pool.request(
                    "POST",
                    self.url + "/predict?top_k=5",
                    fields={"file": (f"{i}-{n}.png", data, "image/png")},
                    timeout=urllib3.Timeout(total=60),
                )
                answer = Answer(started, r.status, r.headers.get("X-Model-Version", ""), base, json.loads(r.data))
                with self._lock:
                    self.answers.append(answer)
            except Exception as exc:  # a failed request fails the test below
                with self._lock:
                    self.errors.append(f"client {i} request {n}: {exc!r}")
            n += 1

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)

    def since(self, t: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= t]


def matches(answer: dict, reference: list) -> bool:
    return answer["prediction"] == reference[0][0] and abs(answer["score"] - reference[0][1]) <= SCORE_TOLERANCE


def when_refused(refused: list[Answer], stack: Stack, **marks: float) -> str:
    """The refused answers on the rollout's clock (seconds since `make model` began), then the model service's log
    lines that can explain them: a refusal during a rollout is a defect to find, not a flake to retry."""
    origin = marks["making"]
    lines = [f"{len(refused)} refused; phases: " + ", ".join(f"{k} {v - origin:+.2f} s" for k, v in marks.items())]
    lines += [f"{a.started - origin:+.2f} s: {a.status} {a.body.get('error')}" for a in refused[:10]]
    log = (stack.run_dir / "logs" / "model.log").read_text(errors="replace").splitlines()
    lines += [line for line in log if re.search(r"WARNING|ERROR|ready|switched|started|died|stopped", line)][-40:]
    return "\n".join(lines)


def worker_versions(url: str) -> list[str]:
    body = requests.get(url + "/ready", timeout=5).json()
    return sorted(w.get("model_version") or "" for w in body["workers"] if w["ready"])


@pytest.fixture(scope="module")
def rollout(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollout")
    repository = tmp / "repository"
    link_folder(converted_model_dir(), repository / "resnet50" / "1")
    bases = tmp / "bases"
    bases.mkdir()
    for name in BASES:
        (bases / f"{name}.png").write_bytes(png(name))
    stack = Stack(
        tmp,
        env={"MODEL_DIR": "", "MODEL_REPOSITORY": str(repository), "MODEL_POLL_S": str(POLL_S), "THREADS": "1"},
        workers=2,
    )
    with stack.running(timeout=180):
        yield stack, repository, bases


def test_rollout_under_load_then_rollback_by_pin(rollout):
    stack, repository, bases = rollout
    url = stack.url
    assert worker_versions(url) == ["1", "1"]
    same = png("cat.jpg", "identical bytes before and after the switch")
    before = requests.post(url + "/predict", files={"file": ("same.png", same, "image/png")}, timeout=60)
    assert before.status_code == 200 and before.headers["X-Model-Version"] == "1"

    cache = seeded_model_cache(1)
    with Clients(url) as clients:
        wait_until(lambda: len(clients.answers) >= 8, 120, "answers before the rollout")
        making = time.monotonic()
        made = make_model(repository, stack, WEIGHTS="random:1", MODEL_REUSE_FROM=str(cache))
        returned = time.monotonic()
        assert made.returncode == 0, made.stdout + made.stderr
        wait_until(lambda: worker_versions(url) == ["2", "2"], 180, "both workers on version 2", 0.1)
        switched = time.monotonic()
        wait_until(lambda: len(clients.since(switched)) >= 8, 120, "answers after the rollout")
    if not cache.is_dir():  # the next session reuses this conversion instead of spending minutes on TensorFlow
        link_folder(repository / "resnet50" / "2", cache)

    refs = {
        version: {
            Path(k).name.removesuffix(".png"): v for k, v in reference_answers(folder, sorted(bases.iterdir())).items()
        }
        for version, folder in (("1", repository / "resnet50" / "1"), ("2", repository / "resnet50" / "2"))
    }
    assert any(refs["1"][b][0][0] != refs["2"][b][0][0] for b in BASES), "the two versions must answer differently"
    assert not clients.errors, clients.errors[:5]
    refused = [a for a in clients.answers if a.status != 200]
    assert not refused, when_refused(refused, stack, making=making, returned=returned, switched=switched)
    wrong = [(a.version, a.base, a.body) for a in clients.answers if not matches(a.body, refs[a.version][a.base])]
    assert not wrong, wrong[:5]  # every answer is exactly version 1's or version 2's, as its header says
    assert {a.version for a in clients.answers} == {"1", "2"}
    assert {a.version for a in clients.since(switched)} == {"2"}
    delay = switched - returned
    print(f"new version served everywhere {delay:.1f} s after make model returned (MODEL_POLL_S={POLL_S})")
    assert delay <= POLL_S + 60  # the poll, then building and warming ResNet50 beside the serving session

    metrics = requests.get(url + "/metrics", timeout=10).text  # local client: nginx lets it through
    assert re.findall(r'ml_model_version_info\{[^}]*version="(\d+)"[^}]*\} (\S+)', metrics) == [("2", "2.0")]

    after = requests.post(url + "/predict", files={"file": ("same.png", same, "image/png")}, timeout=60)
    assert after.status_code == 200 and after.headers["X-Model-Version"] == "2"
    assert matches(after.json(), refs["2"]["cat.jpg"]) and not matches(before.json(), refs["2"]["cat.jpg"])
    again = requests.post(url + "/predict", files={"file": ("same.png", same, "image/png")}, timeout=60)
    assert again.headers["X-Model-Version"] == "2" and again.json() == after.json()  # from the cache, same version

    switches = re.findall(
        r"switched model version .*", "\n".join(p.read_text() for p in (stack.run_dir / "logs").glob("*.log"))
    )
    print("\n".join(switches))
    assert len(switches) >= 2

    # Rollback without a restart: pin version 1 through the repository route (local clients only, via nginx).
    pinned = requests.post(
        url + "/v2/repository/models/resnet50/load", json={"parameters": {"version": "1"}}, timeout=10
    )
    assert pinned.status_code == 200, pinned.text
    wait_until(lambda: worker_versions(url) == ["1", "1"], 180, "both workers back on version 1", 0.1)
    back = requests.post(
        url + "/predict", files={"file": ("b.png", png("coffee.jpg", "after the pin"), "image/png")}, timeout=60
    )
    assert back.headers["X-Model-Version"] == "1" and matches(back.json(), refs["1"]["coffee.jpg"])
    assert requests.post(url + "/v2/repository/models/resnet50/load", timeout=10).status_code == 200
    wait_until(lambda: worker_versions(url) == ["2", "2"], 180, "both workers on the newest version again", 0.1)


def named_infer(url: str, version: str, image: bytes) -> requests.Response:
    """One JSON Open Inference Protocol request naming `version`: the top class as Triton's classification."""
    body = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(image).decode()]}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 1, "binary_data": False}}],
    }
    return requests.post(f"{url}/v2/models/resnet50/versions/{version}/infer", json=body, timeout=60)


def test_a_named_version_is_computed_by_its_own_workers_while_two_are_served(rollout, tmp_path):
    """A canary: the stack's workers serve the newest version while another host is pinned to version 1. Every
    request naming a version is answered by that version (its jobs go to the version's stream), none is refused."""
    stack, repository, _ = rollout
    url = stack.url
    assert worker_versions(url) == ["2", "2"]  # the test above left the default policy: the newest
    canary = stack.start_model_host(WORKER_NAME="canary", MODEL_VERSION="1", WORKERS="1", THREADS="1")
    try:
        wait_until(lambda: worker_versions(url) == ["1", "2", "2"], 180, "the canary serving version 1 beside 2", 0.2)
        photos = BASES[:2]
        for base in photos:
            (tmp_path / f"{base}.png").write_bytes(png(base))
        refs = {
            v: {
                Path(k).name: a
                for k, a in reference_answers(repository / "resnet50" / v, sorted(tmp_path.glob("*.png"))).items()
            }
            for v in ("1", "2")
        }
        for i in range(16):
            version, base = "12"[i % 2], photos[(i // 2) % len(photos)]
            response = named_infer(url, version, png(base, f"named {i}"))
            assert response.status_code == 200, response.text
            body = response.json()
            score, _, label = body["outputs"][0]["data"][0].split(":", 2)
            assert (body["model_version"], response.headers["X-Model-Version"]) == (version, version)
            (want_label, want_score), *_ = refs[version][f"{base}.png"]
            assert label == want_label and abs(float(score) - want_score) <= SCORE_TOLERANCE
    finally:
        canary.terminate()
        canary.wait(60)


def test_int8_on_a_calibration_set_built_to_disagree_is_refused(rollout, tmp_path):
    stack, repository, _ = rollout
    held_out = write_disagreeing_calibration_set(tmp_path / "calibration")
    before = sorted(p.name for p in (repository / "resnet50").iterdir())
    made = make_model(
        repository,
        stack,
        WEIGHTS="random:1",
        INT8="1",
        CALIBRATION=str(tmp_path / "calibration"),
        MODEL_REUSE_FROM=str(seeded_model_cache(1)),
    )
    assert made.returncode == 4, made.stdout + made.stderr
    message = re.search(r"INT8 top-1 agreement with fp32 is ([0-9.]+) on (\d+) held-out inputs", made.stderr)
    assert message and float(message.group(1)) < 0.98 and int(message.group(2)) == 2 * len(held_out), made.stderr
    assert "below INT8_MIN_AGREEMENT=0.98: not published" in made.stderr
    assert sorted(p.name for p in (repository / "resnet50").iterdir()) == before  # nothing published, no leftovers
