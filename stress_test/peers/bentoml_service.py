"""BentoML peer: adaptive batching (max batch 8), two single-CPU workers; `bentoml serve` starts it.

  PYTHONPATH=<repo>:<repo>/model MODEL_DIR=... bentoml serve stress_test.peers.bentoml_service:Classifier
The request is BentoML's natural file upload: multipart/form-data, the encoded image in the field "images".
"""

from __future__ import annotations

from pathlib import Path

import bentoml

from stress_test.peers.onnx_model import MAX_BATCH, OnnxClassifier, decode

WORKERS = 2  # replicas, each with one CPU and one intra-op thread


@bentoml.service(workers=WORKERS, resources={"cpu": "1"}, traffic={"timeout": 120})
class Classifier:
    def __init__(self) -> None:
        self.model = OnnxClassifier()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=60_000)
    def predict(self, images: list[Path]) -> list[dict]:
        """One upload per request; BentoML merges concurrent requests into one call of up to 8."""
        return self.model.classify([decode(p.read_bytes()) for p in images])
