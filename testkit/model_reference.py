"""Reference answers of a converted model folder: the worker's own Classifier (ONNX Runtime, fp32) on the worker's
own preprocessing of each image, one image per run. Run from inside model/ so its modules are the ones imported:

    cd model && PYTHONPATH=.. python -m testkit.model_reference MODEL_FOLDER IMAGE...   # prints JSON

`reference_answers()` does that in a subprocess and returns {image path: [[label, probability], ...top 5]}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testkit.paths import REPO


def reference_answers(model_folder: Path, images: list[Path], timeout: float = 300) -> dict[str, list]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "testkit.model_reference", str(model_folder), *map(str, images)],
        cwd=REPO / "model",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def main(argv: list[str]) -> int:
    import settings
    from classifier import Classifier
    from resnet_common.preprocess import preprocess_bytes

    folder, images = argv[0], argv[1:]
    clf = Classifier(settings.load(MODEL_DIR=folder, MODEL_VARIANT="fp32"), threads=1)  # the folder's class names
    clf.initialize()
    out = {}
    for path in images:
        pred = clf.predict_batch([preprocess_bytes(Path(path).read_bytes())], top_k=5)[0]
        out[path] = [list(pair) for pair in pred.top_k]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
