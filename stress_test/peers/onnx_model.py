"""The served ResNet50 for a peer: the same ONNX file, session options and Keras-identical preprocessing as ours.

Every peer service imports this (in its own virtual environment, which has the shared package installed, with the
repository root and model/ on PYTHONPATH), so the only thing that differs between the systems measured side by side is the serving layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from resnet_common.preprocess import decode_pixels, normalize_pixels  # decode as the API, normalise as the worker
from session import PREFERRED_OUTPUT, open_session, read_card  # model/session.py: the worker's own session factory

MAX_BATCH = 8  # the service's BATCH_SIZE


def served_model_path(model_dir: str | None = None) -> Path:
    """The ONNX file the model card says is served (its "serve" variant), under MODEL_DIR."""
    folder = model_dir or os.environ["MODEL_DIR"]
    card = read_card(folder)
    return Path(folder) / card["variants"][card.get("serve", "fp32")]["file"]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class OnnxClassifier:
    """One single-threaded session per replica (spinning off: replicas share the cores), as each of our workers."""

    def __init__(self, model_dir: str | None = None, threads: int = 1) -> None:
        self.session = open_session(str(served_model_path(model_dir)), threads, spin=False)
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = PREFERRED_OUTPUT if PREFERRED_OUTPUT in outputs else outputs[0]

    def classify(self, pixels: list[np.ndarray]) -> list[dict]:
        """uint8 224×224×3 arrays → top-1 class index and probability per image, in one session run."""
        batch = np.stack([normalize_pixels(p) for p in pixels])
        out = self.session.run([self.output_name], {self.input_name: batch})[0]
        probs = out if self.output_name == PREFERRED_OUTPUT else softmax(out)
        top = probs.argmax(axis=1)
        return [{"class": int(i), "score": float(probs[n, i])} for n, i in enumerate(top)]


def decode(data: bytes) -> np.ndarray:
    """Encoded image bytes → 224×224×3 uint8, exactly as the API decodes an upload."""
    return decode_pixels(data)
