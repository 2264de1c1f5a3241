"""MLServer peer: a custom runtime; MLServer's adaptive batching (max_batch_size 8) merges requests before predict.

  PYTHONPATH=<repo>:<repo>/model MODEL_DIR=... mlserver start stress_test/peers/mlserver_model
The request is the Open Inference Protocol V2 over REST: one BYTES input "image", the encoded file in base64.
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import Base64Codec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

from stress_test.peers.onnx_model import OnnxClassifier, decode


class ClassifierRuntime(MLModel):
    async def load(self) -> bool:
        self.model = OnnxClassifier()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = Base64Codec.decode_input(payload.inputs[0])
        results = self.model.classify([decode(data) for data in images])
        n = len(results)
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                ResponseOutput(name="class", shape=[n, 1], datatype="INT64", data=[r["class"] for r in results]),
                ResponseOutput(name="score", shape=[n, 1], datatype="FP32", data=[r["score"] for r in results]),
            ],
        )
