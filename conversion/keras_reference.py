"""Keras' own answers for image files, as JSON: the reference a served model is checked against.

  .venv-convert/bin/python conversion/keras_reference.py --weights random:0 tests/data/photos/*.jpg

Builds keras.applications.ResNet50 (softmax head) from the same weights request the converter takes
(`random:SEED` is re-created from its seed, bit for bit), preprocesses with Keras itself, and prints
{"tolerance_probs": ..., "weights": ..., "probabilities": {file name: [1000 floats]}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from keras_model import load_model, resnet50_reference
from parity import TOLERANCE_PROBS, keras_photo_batch
from weights import parse_weights_spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="imagenet | random[:SEED] | <path to a Keras weights file>")
    p.add_argument("images", nargs="+", type=Path)
    args = p.parse_args(argv)
    spec = parse_weights_spec(args.weights)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_model(spec, Path(tmp))  # random weights: saved to tmp so Keras' own loader reads them back
        model = resnet50_reference(loaded.weights_path)
        probs = model.predict(keras_photo_batch(args.images), verbose=0)
    json.dump(
        {
            "tolerance_probs": TOLERANCE_PROBS,
            "weights": args.weights,
            "weights_sha256": loaded.weights_sha256,
            "probabilities": {path.name: [float(v) for v in row] for path, row in zip(args.images, probs)},
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
