"""The model with a fixed lifecycle: initialize (session, labels, warm-up) → predict_batch → finalize.

One ONNX Runtime run per batch and exactly one result per item: a failing run is retried item by item so
a poison input fails alone and its batch neighbours still get their answers. Items that ask to be explained get
a class activation map (resnet_common.cam) from that same run; the feature map is fetched only when one of them asks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np

from resnet_common.cam import Explainer, as_lists
from resnet_common.protocol import ErrorKind
from labels import load_labels
from resnet_common.preprocess import TARGET_SIZE
from session import ModelHandle, create_session
from settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Prediction:
    """One item's answer: top-k (label, probability rounded to 4 decimals), or an error."""

    top_k: list[tuple[str, float]]
    error: ErrorKind | None = None
    message: str = ""
    heatmap: list[list[float]] | None = None  # class activation map of the top-1 class, when asked and possible
    probabilities: np.ndarray | None = None  # the whole float32 vector (a row of the batch's output, no copy)

    @property
    def ok(self) -> bool:
        return self.error is None


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """ResNet50 on ONNX Runtime. Create one per process, after any fork."""

    def __init__(self, cfg: Settings, threads: int = 1, spin: bool = False, model_dir: str | None = None) -> None:
        self.cfg, self.threads, self.spin, self.model_dir = cfg, threads, spin, model_dir
        self.handle: ModelHandle | None = None
        self.explainer: Explainer | None = None  # None: the model has no feature map output
        self.labels: list[str] = []
        self.ready = False

    def initialize(self) -> None:
        """Load labels and session, then run one dummy batch so the first real request pays no set-up cost."""
        started = time.perf_counter()
        self.handle = create_session(self.cfg, self.threads, self.spin, self.model_dir)
        self.labels = load_labels(self.handle.labels_file or self.cfg.LABELS_FILE)  # a version carries its own
        try:
            self.explainer = Explainer.for_session(self.handle.session, self.handle.path)
        except ValueError as exc:  # a `features` output without a dense head we can read: classify, do not explain
            log.error("class activation maps disabled: %s", exc)
        dummy = np.zeros((1, *TARGET_SIZE, 3), dtype=np.float32)
        classes = self._run(dummy).shape[-1]
        if classes != len(self.labels):  # every answer would fail: refuse to serve this model at all
            raise ValueError(
                f"{self.handle.path} answers {classes} classes; its class index "
                f"{self.handle.labels_file or self.cfg.LABELS_FILE} names {len(self.labels)}"
            )
        self.ready = True
        log.info("model ready in %.2f s", time.perf_counter() - started)

    def finalize(self) -> None:
        self.ready = False
        self.handle = None
        self.explainer = None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._infer(batch, features=False)[0]

    def _infer(self, batch: np.ndarray, features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities, and the feature map only when asked (a run that does not fetch it costs nothing more)."""
        assert self.handle is not None, "initialize() first"
        h = self.handle
        names = [h.output_name] + ([self.explainer.output] if features and self.explainer else [])
        outs = h.session.run(names, {h.input_name: batch})
        probs = _softmax(outs[0]) if h.apply_softmax else outs[0]
        return probs, (outs[1] if len(outs) > 1 else None)

    def _top_k(self, probs: np.ndarray, k: int) -> Prediction:
        if probs.shape != (len(self.labels),) or not np.all(np.isfinite(probs)):
            return Prediction([], ErrorKind.INFERENCE_FAILED, "model returned non-finite or misshapen output")
        order = np.argsort(-probs, kind="stable")[:k]
        return Prediction([(self.labels[i], round(float(probs[i]), 4)) for i in order], probabilities=probs)

    def _explain(self, preds: list[Prediction], probs: np.ndarray, features: np.ndarray, asked: list[bool]) -> None:
        """Attach the class map of its top-1 class to every successful prediction that asked for one."""
        assert self.explainer is not None
        rows = [i for i, (p, a) in enumerate(zip(preds, asked)) if a and p.ok]
        if rows:
            maps = self.explainer.maps(features[rows], np.argmax(probs[rows], axis=1))
            for i, cam in zip(rows, maps):
                preds[i].heatmap = as_lists(cam)

    def predict_batch(
        self, arrays: Sequence[np.ndarray], top_k: int | Sequence[int] = 5, explain: Sequence[bool] | None = None
    ) -> list[Prediction]:
        """Preprocessed HWC float32 arrays (or one NHWC array, run as it is) → one Prediction per array, in order;
        `explain[i]` asks for a heatmap."""
        if len(arrays) == 0:
            return []
        ks = [top_k] * len(arrays) if isinstance(top_k, int) else list(top_k)
        asked = list(explain) if explain is not None else [False] * len(arrays)
        try:
            batch = arrays if isinstance(arrays, np.ndarray) else np.stack(arrays)
            probs, features = self._infer(batch.astype(np.float32, copy=False), any(asked))
            preds = [self._top_k(p, k) for p, k in zip(probs, ks)]
            if features is not None:
                self._explain(preds, probs, features, asked)
            return preds
        except Exception:
            if len(arrays) == 1:
                log.exception("inference failed")
                return [Prediction([], ErrorKind.INFERENCE_FAILED, "inference failed")]
            log.warning("batch of %d failed; retrying item by item to isolate the bad input", len(arrays))
        return [self.predict_batch([a], k, [e])[0] for a, k, e in zip(arrays, ks, asked)]
