"""What PREPROCESS=fast costs in agreement and saves in decode time, on the 12 MP phone photos.

Agreement with keras mode (the fp32 model, each photo and its mirror image): top-1 agreement, cosine of the
logits (mean, min), largest absolute difference of any class probability. Decode time per photo in each mode
(median of a few rounds, one core, in this process). Written to decode_profile.json by `make bench`.

  python -m stress_test.decode_profile --out /tmp/decode_profile.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from resnet_common import preprocess

from stress_test import artifacts
from stress_test.phone_photos import phone_photos
from stress_test.photos import photo_bytes
from stress_test.results import write_json


def agreement(model: Path, photos: list[tuple[str, bytes]]) -> dict[str, Any]:
    """keras vs fast mode through the model (fp32), on the photos and their mirror images."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    inputs = {mode: [preprocess.decode_pixels(d, mode=mode) for _, d in photos] for mode in preprocess.MODES}
    runs = {}
    for mode, pixels in inputs.items():
        pixels = pixels + [p[:, ::-1] for p in pixels]
        x = np.stack([preprocess.normalize_pixels(np.ascontiguousarray(p)) for p in pixels])
        out = dict(zip(outputs, session.run(outputs, {session.get_inputs()[0].name: x})))
        logits = out.get("logits", np.log(np.maximum(out.get("probabilities", next(iter(out.values()))), 1e-12)))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        runs[mode] = (logits, e / e.sum(axis=1, keepdims=True))
    (lk, pk), (lf, pf) = runs["keras"], runs["fast"]
    cosine = (lk * lf).sum(1) / (np.linalg.norm(lk, axis=1) * np.linalg.norm(lf, axis=1))
    pixel_diff = [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(inputs["keras"], inputs["fast"])]
    return {
        "images": int(lk.shape[0]),
        "inputs": "12 MP phone photos + their mirror images",
        "top1_agreement": float((lk.argmax(1) == lf.argmax(1)).mean()),
        "logit_cosine_mean": round(float(cosine.mean()), 6),
        "logit_cosine_min": round(float(cosine.min()), 6),
        "max_abs_diff_probs": round(float(np.abs(pk - pf).max()), 6),
        "mean_abs_pixel_diff": round(statistics.mean(pixel_diff), 3),
    }


def decode_ms(photos: list[tuple[str, bytes]], rounds: int = 3) -> dict[str, float]:
    """Median ms to decode one photo to the model's pixels, per mode."""
    out = {}
    for mode in preprocess.MODES:
        times = []
        for _ in range(rounds):
            for _, data in photos:
                t0 = time.perf_counter()
                preprocess.decode_pixels(data, mode=mode)
                times.append((time.perf_counter() - t0) * 1000)
        out[mode] = round(statistics.median(times), 2)
    return out


def run(model_dir: Path, quick: bool = False) -> dict[str, Any]:
    phone, small = phone_photos(), photo_bytes()
    model = artifacts.variants(model_dir).get("fp32")
    return {
        "agreement_12mp": agreement(model, phone[:2] if quick else phone) if model else None,
        "decode_ms_12mp": decode_ms(phone[:1] if quick else phone, 1 if quick else 3),
        "decode_ms_small": decode_ms(small, 1 if quick else 5),
        "photo_mib_12mp": round(sum(len(d) for _, d in phone) / len(phone) / 2**20, 2),
    }


def save(model_dir: Path, folder: Path, quick: bool = False) -> dict[str, Any]:
    data = run(model_dir, quick)
    write_json(folder / "decode_profile.json", data)
    print(f"decode per 12 MP photo: {data['decode_ms_12mp']} ms; fast vs keras: {data['agreement_12mp']}")
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="MODEL_DIR (default MODEL_DIR or model/artifacts)")
    p.add_argument("--out", required=True, help="JSON file")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    data = run(artifacts.model_dir(args.model_dir), args.quick)
    write_json(out, data)
    print(data)


if __name__ == "__main__":
    main()
