"""The original app's way of serving, measured: Keras ResNet50 `model.predict` on one image per call, same weights.

Runs in the TensorFlow environment (.venv-convert); bench_model.py starts it as a subprocess (`python -m stress_test.keras_baseline`) so TensorFlow's
threads and memory never overlap the ONNX Runtime measurements. Prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(weights: str | None, images: int, warmup: int) -> dict:
    """Images/s and per-call latency of model.predict(x[None]) over the shared photos, cycling."""
    import numpy as np
    import keras
    from stress_test.photos import photo_paths

    t0 = time.perf_counter()
    model = keras.applications.ResNet50(weights=None)
    if weights:
        model.load_weights(weights)
    load_s = time.perf_counter() - t0
    paths = photo_paths()
    inputs = []
    for p in paths:  # the original app's preprocessing, done once: only predict is timed
        img = keras.utils.load_img(p, target_size=(224, 224))
        x = keras.applications.resnet50.preprocess_input(keras.utils.img_to_array(img))
        inputs.append(np.expand_dims(x, 0))
    for i in range(warmup):
        model.predict(inputs[i % len(inputs)], verbose=0)
    latencies = []
    start = time.perf_counter()
    for i in range(images):
        t = time.perf_counter()
        model.predict(inputs[i % len(inputs)], verbose=0)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    lat_ms = np.array(latencies) * 1000
    return {
        "method": "keras model.predict, batch 1, one call per image (TensorFlow default threads)",
        "weights": weights or "random init (no weights file found; speed does not depend on the values)",
        "images": images,
        "img_s": round(images / elapsed, 3),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
        "p95_ms": round(float(np.percentile(lat_ms, 95)), 2),
        "load_s": round(load_s, 2),
        "keras": keras.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--weights", default="", help="Keras weights file (*.weights.h5 or legacy .h5); empty = random init"
    )
    parser.add_argument("--images", type=int, default=40, help="timed predict calls (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed predict calls first (default 3)")
    args = parser.parse_args()
    print(json.dumps(measure(args.weights or None, args.images, args.warmup)))


if __name__ == "__main__":
    main()
