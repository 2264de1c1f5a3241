"""A fine-tuned ResNet50 with classes of its own, the way a user serves one: `make model LABELS=<names>` into a
repository, then `make run`. /predict, the page's labels and the Open Inference Protocol (through tritonclient)
answer with its names and its number of classes, exactly as the worker's classifier answers on its own."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter

import numpy as np
import pytest
import requests
import tritonclient.http as triton

from testkit import converted_model_dir, wait_until
from testkit.model_reference import reference_answers
from testkit.stack import PHOTOS, Stack, make_model, post_photo

FLOWERS = ["daisy", "dandelion", "rose", "sunflower", "tulip"]
MODEL = "resnet50"


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own-classes")
    labels = folder / "flowers.txt"
    labels.write_text("\n".join(FLOWERS) + "\n")
    made = make_model(folder / "repository", WEIGHTS="random:5", LABELS=str(labels))  # a 5-class head, seeded
    assert made.returncode == 0, made.stdout + made.stderr
    return folder / "repository"


@pytest.fixture(scope="module")
def sup(repository, tmp_path_factory):
    env = {"MODEL_DIR": "", "MODEL_REPOSITORY": str(repository), "RESPONSE_CACHE": "0"}
    with Stack(tmp_path_factory.mktemp("stack"), env=env, workers=1).running(timeout=180) as s:
        yield s


def test_the_version_carries_its_class_names(repository):
    version = repository / MODEL / "1"
    card = json.loads((version / "model_card.json").read_text())
    assert (card["classes"], card["parity"]["top1_agreement"]) == (5, 1.0)  # checked against Keras when converted
    index = json.loads((version / card["labels"]).read_text())
    assert [index[str(i)][1] for i in range(5)] == FLOWERS


def test_predict_answers_with_the_heads_own_names_as_the_classifier_does(sup, repository):
    expected = reference_answers(repository / MODEL / "1", [PHOTOS / "cat.jpg"])[str(PHOTOS / "cat.jpg")]
    answer = post_photo(sup.url, "cat.jpg", params={"top_k": 10, "explain": 1})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["top_k"]) == 5 and sorted(label for label, _ in body["top_k"]) == sorted(FLOWERS)
    assert body["top_k"] == expected and body["prediction"] == expected[0][0]
    assert np.asarray(body["heatmap"]).shape == (7, 7)  # the class map of its own top class
    page = requests.post(sup.url + "/", files={"file": ("cat.jpg", (PHOTOS / "cat.jpg").read_bytes())}, timeout=60)
    assert page.status_code == 200, page.text
    shown = re.search(r'<strong id="prediction">([^<]*)</strong>', page.text)
    assert shown is not None and shown.group(1) == expected[0][0]
    rows = re.findall(r'<th scope="row">([^<]*)</th>.*?<td class="num">([^<]*)</td>', page.text, re.DOTALL)
    assert [label for label, _ in rows] == [label for label, _ in expected[:5]]  # the page's top 5: every class
    assert [float(score) for _, score in rows] == pytest.approx([p for _, p in expected[:5]], abs=6e-5)


def test_the_protocol_describes_and_answers_five_classes(triton_client, sup):
    meta = triton_client.get_model_metadata(MODEL)
    assert {o["name"]: o["shape"] for o in meta["outputs"]}["probabilities"] == [-1, 5]
    config = triton_client.get_model_config(MODEL, "1")
    assert [o["dims"] for o in config["output"]] == [[5], [7, 7]]
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([(PHOTOS / "cat.jpg").read_bytes()], dtype=np.object_))
    outputs = [
        triton.InferRequestedOutput("probabilities"),
        triton.InferRequestedOutput("probabilities", class_count=3),
    ]
    probs = triton_client.infer(MODEL, [tensor], outputs=outputs[:1]).as_numpy("probabilities")
    assert probs.shape == (1, 5) and abs(float(probs.sum()) - 1) < 1e-3
    ranked = triton_client.infer(MODEL, [tensor], outputs=outputs[1:]).as_numpy("probabilities")
    entries = [entry.decode().split(":") for entry in ranked[0]]
    assert [int(index) for _, index, _ in entries] == list(np.argsort(-probs[0], kind="stable")[:3])
    assert all(label == FLOWERS[int(index)] for _, index, label in entries)  # Triton's "score:index:label"
    every = triton.InferRequestedOutput("probabilities", class_count=10)  # more than the head has: all 5, as Triton
    assert triton_client.infer(MODEL, [tensor], outputs=[every]).as_numpy("probabilities").shape == (1, 5)
    predicted = post_photo(sup.url, "cat.jpg", params={"top_k": 5}).json()["top_k"]
    np.testing.assert_allclose(sorted(probs[0], reverse=True), [p for _, p in predicted], atol=6e-5)


def test_a_rollout_from_imagenet_to_a_head_of_its_own_never_mixes_the_two(repository, tmp_path):
    """Two workers switch from an ImageNet version to the 5-class one while clients send 2-image V2 requests: each
    answer is one version's, of its width, or a 503 to retry; never a 500 nor rows of two widths."""
    rollout = tmp_path / "repository"
    first = make_model(rollout, WEIGHTS="random:0", MODEL_REUSE_FROM=str(converted_model_dir()))  # hard links
    assert first.returncode == 0, first.stdout + first.stderr
    env = {"MODEL_DIR": "", "MODEL_REPOSITORY": str(rollout), "MODEL_POLL_S": "1", "RESPONSE_CACHE": "0"}
    images = [base64.b64encode((PHOTOS / name).read_bytes()).decode() for name in ("cat.jpg", "coffee.jpg")]
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": images}]}
    answers: list[tuple[int, str | None, list | None, str | None, str | None]] = []
    stop = threading.Event()

    def client(url: str) -> None:
        with requests.Session() as http:
            for _ in range(1000):  # bounded: the switch takes seconds
                if stop.is_set():
                    return
                r = http.post(f"{url}/v2/models/{MODEL}/infer", json=body, timeout=60)
                answer = r.json()
                shape = answer["outputs"][0]["shape"] if r.status_code == 200 else None
                retry = r.headers.get("Retry-After")
                answers.append((r.status_code, answer.get("model_version"), shape, retry, answer.get("error")))

    with Stack(tmp_path / "stack", env=env, workers=2).running(timeout=180) as stack:
        clients = [threading.Thread(target=client, args=(stack.url,)) for _ in range(3)]
        for thread in clients:
            thread.start()
        try:
            wait_until(lambda: len(answers) >= 6, 120, "answers of version 1")
            labels = tmp_path / "flowers.txt"
            labels.write_text("\n".join(FLOWERS))
            made = make_model(
                rollout, stack, WEIGHTS="random:5", LABELS=str(labels), MODEL_REUSE_FROM=str(repository / MODEL / "1")
            )
            assert made.returncode == 0, made.stdout + made.stderr
            wait_until(
                lambda: sorted(w["model_version"] for w in stack.ready_workers()) == ["2", "2"],
                120,
                "both workers on version 2",
            )
            switched = len(answers)
            wait_until(lambda: len(answers) >= switched + 6, 120, "answers of version 2")
        finally:
            stop.set()
            for thread in clients:
                thread.join(60)

        def probabilities_shape() -> list[int]:
            meta = requests.get(f"{stack.url}/v2/models/{MODEL}", timeout=10).json()
            return next(o["shape"] for o in meta["outputs"] if o["name"] == "probabilities")

        # each API process reads the heartbeats at most once a second (fleet.READING_TTL_S)
        wait_until(lambda: probabilities_shape() == [-1, 5], 10, "the metadata of version 2")
    print("answers (status, version or error):", Counter((a[0], a[1] or a[4]) for a in answers))
    assert {status for status, *_ in answers} <= {200, 503}, answers
    assert all(retry and error for status, _, _, retry, error in answers if status == 503)  # V2-shaped, to retry
    widths = {(version, tuple(shape)) for status, version, shape, _, _ in answers if status == 200}
    assert widths == {("1", (2, 1000)), ("2", (2, 5))}, widths  # both served; each its own width
