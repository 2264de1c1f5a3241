"""Drive the service with KServe's own REST client (kserve.InferenceRESTClient, V2): run in .venv-kserve.

    .venv-kserve/bin/python testkit/kserve_probe.py BASE_URL MODEL FILE [FILE ...]

Prints one JSON object: the health answers, the probabilities of the files sent as BYTES (binary and JSON) and as
FP32 tensors (the file's .npy beside it: preprocessed by the test), each answer's model name and version (the
X-Model-Version header: the SDK's InferResponse keeps no model_version), and the status and message of the requests
that must fail. The test compares them with /predict's answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def image_input(files: list[bytes], binary: bool) -> InferInput:
    tensor = InferInput("image", [len(files)], "BYTES")
    data = files if binary else [base64.b64encode(f) for f in files]  # JSON carries BYTES as base64 text
    tensor.set_data_from_numpy(np.array(data, dtype=np.object_), binary_data=binary)
    return tensor


def fp32_input(batch: np.ndarray) -> InferInput:
    tensor = InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch.astype(np.float32), binary_data=True)
    return tensor


async def answer(client: InferenceRESTClient, url: str, model: str, tensor: InferInput, binary_out: bool) -> dict:
    request = InferRequest(
        model, [tensor], request_outputs=[RequestedOutput("probabilities", {"binary_data": binary_out})]
    )
    headers: dict[str, str] = {}
    response = await client.infer(url, request, model_name=model, response_headers=headers)
    version = {k.lower(): v for k, v in headers.items()}.get("x-model-version")  # the SDK drops the body's
    probs = response.outputs[0].as_numpy()
    return {"model_name": response.model_name, "model_version": version, "probabilities": probs.tolist()}


async def refusal(client: InferenceRESTClient, url: str, model: str, tensor: InferInput) -> dict:
    try:
        await client.infer(url, InferRequest(model, [tensor]), model_name=model)
    except httpx.HTTPStatusError as exc:
        return {"status": exc.response.status_code, "error": exc.response.json().get("error")}
    return {"status": 200}


async def main(url: str, model: str, paths: list[Path]) -> dict:
    files = [p.read_bytes() for p in paths]
    batch = np.stack([np.load(p.with_suffix(".npy")) for p in paths])
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=60))
    try:
        return {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, model),
            "bytes_binary": await answer(client, url, model, image_input(files, True), True),
            "bytes_json": await answer(client, url, model, image_input(files, False), False),
            "fp32": await answer(client, url, model, fp32_input(batch), True),
            "unknown_model": await refusal(client, url, model + "-missing", image_input(files[:1], True)),
            "not_an_image": await refusal(client, url, model, image_input([b"not an image"], True)),
            "wrong_shape": await refusal(client, url, model, fp32_input(batch[:, :100])),
        }
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], [Path(p) for p in sys.argv[3:]]))))
