"""The Open Inference Protocol through nginx, as `make run` serves it, with Triton's own client (tritonclient).

The answers must equal /predict's on the same images (and /predict's are Keras' — tests/test_predict_e2e.py), the
FP32 path with preprocessing done here must equal the BYTES path, and every malformed request gets a V2 error.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from testkit.stack import PHOTOS, Stack, post_photo

MODEL = "resnet50"
NAMES = ["cat.jpg", "coffee.jpg", "rocket.jpg"]
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@pytest.fixture(scope="module")
def sup(tmp_path_factory):
    # MAX_INFLIGHT 2: the tests send one request at a time, except the one that checks nginx's shedding
    s = Stack(tmp_path_factory.mktemp("v2"), env={"RESPONSE_CACHE": "0", "MAX_INFLIGHT": "2"}, workers=1)
    with s.running():
        yield s


@pytest.fixture(scope="module")
def files() -> list[bytes]:
    return [(PHOTOS / n).read_bytes() for n in NAMES]


@pytest.fixture(scope="module")
def predicted(sup) -> dict[str, list]:
    """/predict's top 5 (label, probability) per photo."""
    out = {}
    for name in NAMES:
        with open(PHOTOS / name, "rb") as fh:
            body = requests.post(sup.url + "/predict?top_k=5", files={"file": (name, fh)}, timeout=60).json()
        out[name] = body["top_k"]
    return out


def keras_preprocess(data: bytes) -> np.ndarray:
    """Keras' load_img(target_size=(224, 224)) + preprocess_input (caffe), written out: RGB, NEAREST, BGR - mean."""
    import io

    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB").resize((224, 224), Image.Resampling.NEAREST)
    x = np.asarray(rgb, dtype=np.float32)[..., ::-1].copy()
    for c, mean in enumerate(CAFFE_MEAN_BGR):
        x[..., c] -= mean
    return x


def image_input(files: list[bytes], binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    if binary:
        tensor.set_data_from_numpy(np.array(files, dtype=np.object_), binary_data=True)
    else:
        encoded = np.array([base64.b64encode(f) for f in files], dtype=np.object_)
        tensor.set_data_from_numpy(encoded, binary_data=False)
    return tensor


def probabilities(triton_client, tensor, binary: bool = True) -> np.ndarray:
    result = triton_client.infer(
        MODEL, [tensor], outputs=[triton.InferRequestedOutput("probabilities", binary_data=binary)]
    )
    response = result.get_response()
    assert response["model_name"] == MODEL and response["model_version"] == "1"
    return result.as_numpy("probabilities")


def test_health_and_metadata(triton_client):
    assert triton_client.is_server_live() and triton_client.is_server_ready() and triton_client.is_model_ready(MODEL)
    assert triton_client.is_model_ready(MODEL, "1")
    server = triton_client.get_server_metadata()
    assert server["extensions"] == [
        "binary_tensor_data",
        "classification",
        "model_configuration",
        "model_repository",
        "statistics",
    ]
    meta = triton_client.get_model_metadata(MODEL)
    assert meta["versions"] == ["1"] and [i["name"] for i in meta["inputs"]] == ["image", "input"]
    config = triton_client.get_model_config(MODEL)
    assert config["max_batch_size"] == 8 and [o["dims"] for o in config["output"]] == [[1000], [7, 7]]


def test_statistics_count_what_the_client_sent(triton_client, files):
    """tritonclient's get_inference_statistics: the images and requests of this test, computed by version 1."""

    def stat() -> dict:
        [one] = triton_client.get_inference_statistics(MODEL, "1")["model_stats"]
        return one

    before = stat()
    tagged = [data + f"statistics {i}".encode() for i, data in enumerate(files)]  # unique bytes: no cache hit
    probabilities(triton_client, image_input(tagged[:2]))
    probabilities(triton_client, image_input(tagged[2:]))
    after = stat()
    count = lambda s, key: s["inference_stats"][key]["count"]  # noqa: E731
    assert after["inference_count"] - before["inference_count"] == 3
    assert count(after, "success") - count(before, "success") == 2
    assert count(after, "compute_infer") - count(before, "compute_infer") == 3
    assert after["inference_stats"]["queue"]["ns"] > before["inference_stats"]["queue"]["ns"]
    assert 1 <= after["execution_count"] - before["execution_count"] <= 3  # 3 images in 1 to 3 batches
    assert after["last_inference"] >= before["last_inference"] and after["last_inference"] > 0


def test_bytes_binary_equals_predict(triton_client, files, predicted):
    probs = probabilities(triton_client, image_input(files))
    assert probs.shape == (3, 1000) and probs.dtype == np.float32
    for row, name in zip(probs, NAMES):
        top = np.sort(row)[::-1][:5]
        np.testing.assert_allclose(top, [p for _, p in predicted[name]], atol=6e-5, err_msg=name)
        assert abs(float(row.sum()) - 1) < 1e-3


def test_bytes_json_equals_binary(triton_client, files):
    binary = probabilities(triton_client, image_input(files))
    as_json = probabilities(triton_client, image_input(files, binary=False), binary=False)
    np.testing.assert_allclose(as_json, binary, rtol=0, atol=1e-6)


def test_fp32_preprocessed_here_equals_bytes(triton_client, files):
    x = np.stack([keras_preprocess(f) for f in files])
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    np.testing.assert_allclose(
        probabilities(triton_client, tensor), probabilities(triton_client, image_input(files)), atol=1e-5
    )


def test_classification_as_triton_formats_it(triton_client, files, predicted):
    out = triton.InferRequestedOutput("probabilities", class_count=3)
    strings = triton_client.infer(MODEL, [image_input(files)], outputs=[out]).as_numpy("probabilities")
    assert strings.shape == (3, 3)
    for row, name in zip(strings, NAMES):
        parsed = [s.decode().split(":") for s in row]
        assert [label for _, _, label in parsed] == [label for label, _ in predicted[name][:3]]
        for (score, index, _), (_, p) in zip(parsed, predicted[name]):
            assert len(score.split(".")[1]) == 6 and abs(float(score) - p) < 6e-5 and 0 <= int(index) < 1000


def test_heatmap_only_when_asked_equals_predict(triton_client, sup, files):
    outs = [triton.InferRequestedOutput("probabilities"), triton.InferRequestedOutput("heatmap")]
    heat = triton_client.infer(MODEL, [image_input(files[:1])], outputs=outs).as_numpy("heatmap")
    with open(PHOTOS / NAMES[0], "rb") as fh:
        body = requests.post(sup.url + "/predict?explain=1", files={"file": (NAMES[0], fh)}, timeout=60).json()
    assert heat.shape == (1, 7, 7)
    np.testing.assert_allclose(heat[0], body["heatmap"], atol=1e-4)


@pytest.mark.parametrize("request_coding, response_coding", [("gzip", "deflate"), ("deflate", "gzip")])
def test_compressed_both_ways_answers_as_uncompressed(triton_client, sup, files, request_coding, response_coding):
    """tritonclient's compression options; the response's coding is checked on the wire (tritonclient would also
    read an uncompressed answer)."""
    plain = probabilities(triton_client, image_input(files))
    packed = triton_client.infer(
        MODEL,
        [image_input(files)],
        outputs=[triton.InferRequestedOutput("probabilities", binary_data=True)],
        request_compression_algorithm=request_coding,
        response_compression_algorithm=response_coding,
    )
    np.testing.assert_allclose(packed.as_numpy("probabilities"), plain, rtol=0, atol=1e-6)
    raw = requests.post(
        f"{sup.url}/v2/models/{MODEL}/infer",
        data=gzip.compress(json.dumps(json_image_request(files[:1])).encode()),
        headers={"Content-Encoding": "gzip", "Accept-Encoding": response_coding},
        timeout=30,
    )
    assert raw.status_code == 200 and raw.headers["Content-Encoding"] == response_coding
    assert raw.json()["outputs"][0]["shape"] == [1, 1000]  # requests undoes the coding it was sent in


def json_image_request(files: list[bytes]) -> dict:
    data = [base64.b64encode(f).decode() for f in files]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(files)], "data": data}]}


def _error(call) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as err:
        call()
    return err.value.status(), err.value.message()


def test_client_errors(triton_client, files):
    assert _error(lambda: triton_client.get_model_metadata("vgg16"))[0] == "404"
    assert _error(lambda: triton_client.get_model_metadata(MODEL, "9"))[0] == "404"
    assert _error(lambda: triton_client.infer("vgg16", [image_input(files[:1])]))[0] == "404"
    wrong_type = triton.InferInput("image", [1], "FP32")
    wrong_type.set_data_from_numpy(np.zeros(1, np.float32))
    assert _error(lambda: triton_client.infer(MODEL, [wrong_type])) == (
        "400",
        "input 'image' must have datatype BYTES, got 'FP32'",
    )
    wrong_shape = triton.InferInput("input", [1, 224, 224], "FP32")
    wrong_shape.set_data_from_numpy(np.zeros((1, 224, 224), np.float32))
    assert _error(lambda: triton_client.infer(MODEL, [wrong_shape]))[0] == "400"
    status, message = _error(lambda: triton_client.infer(MODEL, [image_input([b"not an image"])]))
    assert status == "400" and "image" in message
    assert _error(lambda: triton_client.infer(MODEL, [image_input(files[:1] * 9)]))[0] == "400"  # above V2_MAX_BATCH
    not_base64 = triton.InferInput("image", [1], "BYTES")
    not_base64.set_data_from_numpy(np.array([b"%%% not base64"], dtype=np.object_), binary_data=False)
    status, message = _error(lambda: triton_client.infer(MODEL, [not_base64]))
    assert status == "400" and "base64" in message
    unknown = triton.InferInput("pixels", [1], "BYTES")
    unknown.set_data_from_numpy(np.array([b"x"], dtype=np.object_))
    assert _error(lambda: triton_client.infer(MODEL, [unknown]))[0] == "400"


def _post(sup, body: bytes, **headers) -> requests.Response:
    return requests.post(f"{sup.url}/v2/models/{MODEL}/infer", data=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "body, headers",
    [
        (b'{"inputs": [', {}),  # not JSON
        (b'{"inputs": []}' + b"\0" * 8, {"Inference-Header-Content-Length": "nope"}),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "999999"}),
        (b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}]}', {}),  # bad base64
        (b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1000000000], "data": []}]}', {}),  # huge N
    ],
)
def test_malformed_requests_get_v2_400s(sup, body, headers):
    response = _post(sup, body, **headers)
    assert response.status_code == 400 and set(response.json()) == {"error"}


def test_truncated_binary_body_is_a_400(sup, files):
    header = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(files[0]) + 4}}
        ]
    }
    text = json.dumps(header).encode()
    response = _post(
        sup,
        text + len(files[0]).to_bytes(4, "little") + files[0][:-100],
        **{"Inference-Header-Content-Length": str(len(text))},
    )
    assert response.status_code == 400 and "binary_data_size" in response.json()["error"]


def test_unknown_v2_route_and_oversized_body(sup):
    response = requests.get(sup.url + "/v2/models/resnet50/nothing", timeout=10)
    assert response.status_code == 404 and set(response.json()) == {"error"}
    big = _post(sup, b"x" * (16 * 1024 * 1024 + 1))
    assert big.status_code == 413 and set(big.json()) == {"error"}
    bomb = _post(sup, zlib.compress(b" " * (16 * 1024 * 1024 + 1)), **{"Content-Encoding": "deflate"})  # ~16 kB sent
    assert bomb.status_code == 413 and "inflates to more than" in bomb.json()["error"]
    empties = b"{}," * 5_000_000  # 15 MB of JSON that would parse into ~0.4 GB of empty dicts
    json_bomb = _post(sup, b'{"inputs": [{"name": "input", "datatype": "FP32", "data": [' + empties + b"0]}]}")
    assert json_bomb.status_code == 413 and "binary data" in json_bomb.json()["error"]


def test_beyond_the_admission_bound_nginx_sheds_v2_shaped(sup, files):
    """Eight batches at once against MAX_INFLIGHT 2: each is answered 200 or shed at once with 503 + Retry-After."""
    from concurrent.futures import ThreadPoolExecutor

    item = b"".join(len(f).to_bytes(4, "little") + f for f in files)
    header = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": len(item)}}]
    }
    text = json.dumps(header).encode()
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: _post(sup, text + item, **{"Inference-Header-Content-Length": str(len(text))}), range(8))
        )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 1 and statuses.count(200) >= 1, statuses
    for shed in (r for r in responses if r.status_code == 503):
        assert shed.json() == {"error": "service at its admission limit; retry later"} and shed.headers["Retry-After"]


def test_predict_is_unchanged(sup):
    body = post_photo(sup.url, "cat.jpg").json()
    assert set(body) == {"success", "prediction", "score"}
