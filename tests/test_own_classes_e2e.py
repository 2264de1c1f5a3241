"""A fine-tuned ResNet50 with classes of its own, the way a user serves one: `make model LABELS=<names>` into a
repository, then `make run`. /predict, the page's labels and the Open Inference Protocol (through tritonclient)
answer with its names and its number of classes, exactly as the worker's classifier answers on its own."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
import tritonclient.http as triton

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
    assert page.status_code == 200 and expected[0][0] in page.text


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
