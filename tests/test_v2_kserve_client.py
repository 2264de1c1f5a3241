"""The Open Inference Protocol with a second real client: KServe's Python SDK (kserve.InferenceRESTClient).

The SDK pins packages the service's own venv cannot hold, so it runs in .venv-kserve (`make test` installs it) and
testkit/kserve_probe.py prints what it got; here those answers are held against /predict's on the same photos.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import requests

from resnet_common import preprocess
from testkit.paths import REPO
from testkit.stack import PHOTOS, Stack

MODEL = "resnet50"
NAMES = ["cat.jpg", "coffee.jpg", "rocket.jpg"]
KSERVE_PYTHON = REPO / ".venv-kserve" / "bin" / "python"


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("v2-kserve"), env={"RESPONSE_CACHE": "0"}, workers=1)
    with s.running():
        yield s


@pytest.fixture(scope="module")
def probed(sup, tmp_path_factory) -> dict:
    """What the KServe client got for NAMES (each photo's FP32 tensor preprocessed here, beside it as .npy)."""
    if not KSERVE_PYTHON.exists():
        pytest.fail(f"{KSERVE_PYTHON} missing: scripts/make_venvs.sh --test-clients installs it (make test does)")
    folder = tmp_path_factory.mktemp("kserve-photos")
    for name in NAMES:
        shutil.copy(PHOTOS / name, folder / name)
        pixels = preprocess.decode_pixels((PHOTOS / name).read_bytes())
        np.save(folder / name.replace(".jpg", ".npy"), preprocess.normalize_pixels(pixels))
    done = subprocess.run(
        [
            str(KSERVE_PYTHON),
            str(REPO / "testkit" / "kserve_probe.py"),
            sup.url,
            MODEL,
            *(str(folder / n) for n in NAMES),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def predicted(sup) -> dict[str, list]:
    """/predict's top 5 (label, probability) per photo."""
    out = {}
    for name in NAMES:
        with open(PHOTOS / name, "rb") as fh:
            out[name] = requests.post(sup.url + "/predict?top_k=5", files={"file": (name, fh)}, timeout=60).json()[
                "top_k"
            ]
    return out


def test_health_as_the_sdk_reads_it(probed):
    assert probed["live"] is True and probed["ready"] is True and probed["model_ready"] is True


@pytest.mark.parametrize("how", ["bytes_binary", "bytes_json", "fp32"])
def test_answers_equal_predict_and_name_model_and_version(probed, predicted, how):
    answer = probed[how]
    assert answer["model_name"] == MODEL and answer["model_version"] == "1"
    probs = np.array(answer["probabilities"], dtype=np.float32)
    assert probs.shape == (len(NAMES), 1000)
    for row, name in zip(probs, NAMES):
        np.testing.assert_allclose(np.sort(row)[::-1][:5], [p for _, p in predicted[name]], atol=6e-5, err_msg=name)


def test_bytes_json_and_fp32_equal_bytes_binary(probed):
    binary = np.array(probed["bytes_binary"]["probabilities"])
    np.testing.assert_allclose(np.array(probed["bytes_json"]["probabilities"]), binary, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(probed["fp32"]["probabilities"]), binary, rtol=0, atol=1e-5)


def test_errors_reach_the_sdk_as_v2_errors(probed):
    assert (
        probed["unknown_model"]["status"] == 404
        and "unknown model 'resnet50-missing'" in probed["unknown_model"]["error"]
    )
    assert probed["not_an_image"]["status"] == 400 and "not a readable image" in probed["not_an_image"]["error"]
    assert probed["wrong_shape"]["status"] == 400 and "[N, 224, 224, 3]" in probed["wrong_shape"]["error"]
