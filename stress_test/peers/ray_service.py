"""Ray Serve peer: @serve.batch (max batch 8), two replicas of one CPU; `serve run` starts it.

  PYTHONPATH=<repo>:<repo>/model MODEL_DIR=... serve run stress_test.peers.ray_service:app
The request is Ray Serve's natural HTTP body: the encoded image as the raw POST body.
"""

from __future__ import annotations

import numpy as np
from ray import serve
from starlette.requests import Request

from stress_test.peers.onnx_model import MAX_BATCH, OnnxClassifier, decode

REPLICAS = 2  # each with one CPU and one intra-op thread
BATCH_WAIT_S = 0.01  # Ray's default batch_wait_timeout_s


@serve.deployment(num_replicas=REPLICAS, ray_actor_options={"num_cpus": 1}, max_ongoing_requests=2 * MAX_BATCH)
class Classifier:
    def __init__(self) -> None:
        self.model = OnnxClassifier()

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def classify(self, pixels: list[np.ndarray]) -> list[dict]:
        return self.model.classify(pixels)

    async def __call__(self, request: Request) -> dict:
        return await self.classify(decode(await request.body()))


app = Classifier.bind()
