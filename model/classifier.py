"""The model with a fixed lifecycle: initialize (session, labels, warm-up) → predict_batch → finalize.

One ONNX Runtime run per batch and exactly one result per item: a failing run is retried item by item so
a poison input fails alone and its batch neighbours still get their answers.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np

from constants import ErrorKind
from labels import load_labels
from preprocess import TARGET_SIZE
from session import ModelHandle, create_session
from settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Prediction:
    """One item's answer: top-k (label, probability rounded to 4 decimals), or an error."""

    top_k: list[tuple[str, float]]
    error: ErrorKind | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """ResNet50 on ONNX Runtime. Create one per process, after any fork."""

    def __init__(self, cfg: Settings, threads: int = 1, spin: bool = False) -> None:
        self.cfg, self.threads, self.spin = cfg, threads, spin
        self.handle: ModelHandle | None = None
        self.labels: list[str] = []
        self.ready = False

    def initialize(self) -> None:
        """Load labels and session, then run one dummy batch so the first real request pays no set-up cost."""
        started = time.perf_counter()
        self.labels = load_labels(self.cfg.LABELS_FILE)
        self.handle = create_session(self.cfg, self.threads, self.spin)
        dummy = np.zeros((1, *TARGET_SIZE, 3), dtype=np.float32)
        self._run(dummy)
        self.ready = True
        log.info("model ready in %.2f s", time.perf_counter() - started)

    def finalize(self) -> None:
        self.ready = False
        self.handle = None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        assert self.handle is not None, "initialize() first"
        h = self.handle
        out = h.session.run([h.output_name], {h.input_name: batch})[0]
        return _softmax(out) if h.apply_softmax else out

    def _top_k(self, probs: np.ndarray, k: int) -> Prediction:
        if probs.shape != (len(self.labels),) or not np.all(np.isfinite(probs)):
            return Prediction([], ErrorKind.INFERENCE_FAILED, "model returned non-finite or misshapen output")
        order = np.argsort(-probs, kind="stable")[:k]
        return Prediction([(self.labels[i], round(float(probs[i]), 4)) for i in order])

    def predict_batch(self, arrays: Sequence[np.ndarray], top_k: int | Sequence[int] = 5) -> list[Prediction]:
        """Preprocessed HWC float32 arrays → one Prediction per array, in order."""
        if not arrays:
            return []
        ks = [top_k] * len(arrays) if isinstance(top_k, int) else list(top_k)
        try:
            probs = self._run(np.stack(arrays).astype(np.float32, copy=False))
            return [self._top_k(p, k) for p, k in zip(probs, ks)]
        except Exception:
            if len(arrays) == 1:
                log.exception("inference failed")
                return [Prediction([], ErrorKind.INFERENCE_FAILED, "inference failed")]
            log.warning("batch of %d failed; retrying item by item to isolate the bad input", len(arrays))
        return [self.predict_batch([a], k)[0] for a, k in zip(arrays, ks)]
