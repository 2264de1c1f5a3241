"""The served path gives what Keras gives: same weights file, same photos, same top-1 class and rounded score.

Keras side: keras.applications.ResNet50(weights=<the card's weights file>) with its softmax head, fed by
keras.utils.load_img + img_to_array + preprocess_input. Worker side: model/classifier.py on the ONNX model in
model/artifacts, fed by resnet_common.preprocess; and ml_service.predict(), run with the service's own venv.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import PHOTOS, REPO, run_cli
from parity import keras_photo_batch

MODEL_SRC = REPO / "model"
ARTIFACTS = Path(os.environ.get("MODEL_DIR") or MODEL_SRC / "artifacts")  # what `make test` converted
SERVICE_PYTHON = REPO / ".venv" / "bin" / "python"
TOLERANCE_PROBS = 1e-4


@pytest.fixture(scope="module")
def weights_file() -> Path:
    """The Keras weights file the served model was converted from (random:0 only, so no download is needed)."""
    if run_cli("card_status.py", "--weights", "random:0", "--model-dir", str(ARTIFACTS), "-q").returncode != 0:
        pytest.skip(
            f"{ARTIFACTS} does not hold an up-to-date random-seed-0 model (make test converts it first: "
            "conversion/convert.py --weights random --seed 0)"
        )
    card = json.loads((ARTIFACTS / "model_card.json").read_text())
    path = ARTIFACTS / Path(card["weights"]["path"]).name
    assert path.is_file(), f"the card names {path}, which is missing"
    return path


@pytest.fixture(scope="module")
def keras_probs(weights_file: Path, photos: list[Path]) -> np.ndarray:
    from keras_model import resnet50_reference

    model = resnet50_reference(weights_file)
    probs = model.predict(keras_photo_batch(photos), verbose=0)
    assert probs.shape == (len(photos), 1000)
    return probs.astype(np.float64)


@pytest.fixture(scope="module")
def worker(weights_file: Path):
    import classifier  # model/ is on sys.path (pytest.ini)
    import settings

    cfg = settings.Settings(MODEL_DIR=str(ARTIFACTS), MODEL_VARIANT="fp32")
    clf = classifier.Classifier(cfg, threads=2)
    clf.initialize()
    yield clf
    clf.finalize()


def keras_top1(probs: np.ndarray, names: list[str]) -> tuple[str, float]:
    i = int(np.argmax(probs))
    return names[i], round(float(probs[i]), 4)


def test_classifier_matches_keras(worker, keras_probs, photos):
    import imageprep

    arrays = [imageprep.preprocess_file(p) for p in photos]
    predictions = worker.predict_batch(arrays, top_k=1)
    for path, pred, ref in zip(photos, predictions, keras_probs):
        assert pred.ok, pred.message
        assert pred.top_k[0] == keras_top1(ref, worker.labels), path.name
    probs = worker._run(np.stack(arrays))  # the classifier's own output path, before top-k and rounding
    diff = float(np.max(np.abs(probs - keras_probs)))
    assert diff < TOLERANCE_PROBS, f"worker vs Keras probabilities differ by {diff:.3g}"


def test_ml_service_predict_matches_keras(weights_file, keras_probs, photos, worker):
    if not SERVICE_PYTHON.is_file():
        pytest.skip(f"the service venv is missing ({SERVICE_PYTHON}); create it to run this check")
    names = [p.name for p in photos]
    script = "import json, sys, ml_service\nprint(json.dumps({n: ml_service.predict(n) for n in sys.argv[1:]}))\n"
    env = {
        **os.environ,
        "UPLOAD_FOLDER": str(PHOTOS),
        "MODEL_DIR": str(ARTIFACTS),
        "MODEL_VARIANT": "fp32",
        "THREADS": "2",
        "PYTHONPATH": "",
    }
    done = subprocess.run(
        [str(SERVICE_PYTHON), "-c", script, *names], cwd=MODEL_SRC, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    for name, ref in zip(names, keras_probs):
        assert tuple(answers[name]) == keras_top1(ref, worker.labels), name
