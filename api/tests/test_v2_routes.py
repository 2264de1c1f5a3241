"""The /v2 routes against a real redis-server and a fake worker: metadata, health, inference, errors, admission."""

import base64
import gzip
import hashlib
import itertools
import json
import random
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fleet
import images
import settings
from resnet_common import preprocess, protocol
import v2_infer
import v2_codec
from fakeworker import FakeWorker, error_result, heartbeat
from testkit import photo as read_photo
from testkit import wait_until

MODEL = "resnet50"
INFER = f"/v2/models/{MODEL}/infer"


def fake_probs(payload: bytes) -> np.ndarray:
    """A deterministic probability vector per job payload (what a model would be, for these tests)."""
    seed = int.from_bytes(hashlib.sha256(payload).digest()[:4], "little")
    return np.random.default_rng(seed).dirichlet(np.ones(1000)).astype("<f4")


def v2_answer(fields: dict) -> dict:
    """A worker's answer to a V2 job: the whole vector (probs=1), top_k labels, and a heatmap when asked."""
    payload = fields.get("input") or fields["pixels"]
    probs = fake_probs(payload)
    order = np.argsort(-probs, kind="stable")[: int(fields["top_k"])]
    answer = {
        "ok": True,
        "prediction": f"class{order[0]}",
        "score": round(float(probs[order[0]]), 4),
        "top_k": [[f"class{i}", round(float(probs[i]), 4)] for i in order],
        "error": None,
        "message": "",
        "worker": "fake-0",
        "batch_size": 1,
        "queued_ms": 1.0,
        "inference_ms": 2.0,
    }
    if fields.get("probs") == b"1":
        answer["probs"] = base64.b64encode(probs.tobytes()).decode()
    if fields.get("explain") == b"1":
        answer["heatmap"] = [[round((i * 7 + j) / 48, 4) for j in range(7)] for i in range(7)]
    return answer


@pytest.fixture
def jpeg() -> bytes:
    return read_photo()


@pytest.fixture
def served(redis_env):
    heartbeat(redis_env, "w1")
    return redis_env


def binary_infer(client, items: list[bytes], outputs=None, path=INFER, params=None, headers=None):
    header, payload = image_header(items)
    if outputs is not None:
        header["outputs"] = outputs
    if params is not None:
        header["parameters"] = params
    text = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(text)), **(headers or {})}
    return client.post(path, data=text + payload, headers=headers)


def image_header(items: list[bytes]) -> tuple[dict, bytes]:
    payload = v2_codec.serialize_bytes(items)
    tensor = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [len(items)],
        "parameters": {"binary_data_size": len(payload)},
    }
    return {"inputs": [tensor]}, payload


def split(response) -> tuple[dict, bytes]:
    length = response.headers.get("Inference-Header-Content-Length")
    if length is None:
        return response.get_json(), b""
    return json.loads(response.data[: int(length)]), response.data[int(length) :]


def test_server_metadata_lists_what_is_implemented(client):
    body = client.get("/v2").get_json()
    assert body["extensions"] == [
        "binary_tensor_data",
        "classification",
        "model_configuration",
        "model_repository",
        "statistics",
    ]
    assert client.get("/v2/health/live").get_json() == {"live": True}


def test_readiness_follows_the_workers(client, redis_env):
    response = client.get("/v2/health/ready")
    assert response.status_code == 503 and "error" in response.get_json() and response.headers["Retry-After"]
    heartbeat(redis_env, "w1", ready=False)
    fleet.forget_reading()
    assert client.get(f"/v2/models/{MODEL}/ready").status_code == 503
    heartbeat(redis_env, "w1")
    fleet.forget_reading()
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    assert client.get(f"/v2/models/{MODEL}/ready").get_json() == {"name": MODEL, "version": "1", "ready": True}
    assert client.get(f"/v2/models/{MODEL}/versions/1/ready").status_code == 200


def test_model_metadata_and_config(client, served):
    meta = client.get(f"/v2/models/{MODEL}").get_json()
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    assert {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]} == {
        "image": ("BYTES", [-1, 1]),
        "input": ("FP32", [-1, 224, 224, 3]),
    }
    assert {o["name"]: o["shape"] for o in meta["outputs"]} == {"probabilities": [-1, 1000], "heatmap": [-1, 7, 7]}
    assert client.get(f"/v2/models/{MODEL}/versions/1").get_json() == meta
    config = client.get(f"/v2/models/{MODEL}/config").get_json()
    assert config["max_batch_size"] == 8 and config["name"] == MODEL
    assert (config["platform"], config["backend"]) == ("onnxruntime_onnx", "onnxruntime")  # no runtime reported
    served.hset(protocol.worker_key("w1"), "runtime", "openvino")
    fleet.forget_reading()
    assert client.get(f"/v2/models/{MODEL}/config").get_json()["backend"] == "openvino"
    heartbeat(served, "w2", runtime="onnxruntime")
    fleet.forget_reading()
    assert client.get(f"/v2/models/{MODEL}/config").get_json()["backend"] == "onnxruntime,openvino"  # switching
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [
        ("image", "TYPE_STRING", [1]),
        ("input", "TYPE_FP32", [224, 224, 3]),
    ]
    index = client.post("/v2/repository/index").get_json()
    assert index == [{"name": MODEL, "version": "1", "state": "READY", "reason": ""}]  # repository_control.py


def test_versions_come_from_the_heartbeats(client, served):
    served.hset(protocol.worker_key("w2"), mapping={"ready": "1", "model_version": "2"})
    served.zadd(protocol.HEARTBEATS_KEY, {"w2": time.time()})
    assert client.get(f"/v2/models/{MODEL}").get_json()["versions"] == ["1", "2"]
    assert client.get(f"/v2/models/{MODEL}/versions/2").status_code == 200


def serve_version(r, worker: str, version: str, classes: int = 1000) -> None:
    r.hset(protocol.worker_key(worker), mapping={"ready": "1", "model_version": version, "classes": str(classes)})
    r.zadd(protocol.HEARTBEATS_KEY, {worker: time.time()})


def probability_shape(body: dict) -> list[int]:
    return next(o["shape"] for o in body["outputs"] if o["name"] == "probabilities")


def test_the_probabilities_have_as_many_classes_as_the_served_head(client, served):
    serve_version(served, "w1", "1", classes=10)  # a fine-tuned head of its own 10 classes
    fleet.forget_reading()
    assert probability_shape(client.get(f"/v2/models/{MODEL}").get_json()) == [-1, 10]
    config = client.get(f"/v2/models/{MODEL}/config").get_json()
    assert next(o["dims"] for o in config["output"] if o["name"] == "probabilities") == [10]
    serve_version(served, "w2", "2")  # a rolling switch to an ImageNet head
    fleet.forget_reading()
    assert probability_shape(client.get(f"/v2/models/{MODEL}").get_json()) == [-1, -1]  # the model's: either
    assert probability_shape(client.get(f"/v2/models/{MODEL}/versions/1").get_json()) == [-1, 10]
    assert probability_shape(client.get(f"/v2/models/{MODEL}/versions/2").get_json()) == [-1, 1000]
    config = client.get(f"/v2/models/{MODEL}/versions/2/config").get_json()
    assert next(o["dims"] for o in config["output"] if o["name"] == "probabilities") == [1000]


def ten_classes_as(version: str):
    """A fake worker of a 10-class head: the first 10 of v2_answer's probabilities, renormalised."""

    def answer(fields: dict) -> dict:
        probs = fake_probs(fields.get("input") or fields["pixels"])[:10]
        probs = (probs / probs.sum()).astype("<f4")
        return {**v2_answer(fields), "model_version": version, "probs": base64.b64encode(probs.tobytes()).decode()}

    return answer


def test_a_request_answered_by_heads_of_different_classes_is_a_503_to_retry(client, served, jpeg):
    serve_version(served, "w2", "2", classes=10)
    port = served.connection_pool.connection_kwargs["port"]
    with FakeWorker(port, ten_classes_as("2")):
        response = binary_infer(
            client, [jpeg], outputs=[{"name": "probabilities", "parameters": {"binary_data": False}}]
        )
        assert response.status_code == 200 and np.asarray(response.get_json()["outputs"][0]["shape"]).tolist() == [
            1,
            10,
        ]
    mixed = iter([v2_answer, ten_classes_as("2")] * 2)
    with FakeWorker(port, lambda fields: next(mixed)(fields)):
        response = binary_infer(client, [jpeg, read_photo("coffee.jpg")])
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json() == {"error": "versions 1, 2 answered this request with different classes; retry"}


def answered_as(versions: list[str]):
    """A fake worker whose answers say they were computed by `versions`, one per job, in turn."""
    turn = itertools.cycle(versions)
    return lambda fields: {**v2_answer(fields), "model_version": next(turn)}


def test_model_version_is_the_one_that_computed_the_answers(client, served, jpeg):
    serve_version(served, "w2", "2")  # a rolling switch: versions 1 and 2 both served
    with FakeWorker(served.connection_pool.connection_kwargs["port"], answered_as(["1"])):
        response = binary_infer(client, [jpeg])
    assert split(response)[0]["model_version"] == "1" and response.headers["X-Model-Version"] == "1"
    with FakeWorker(served.connection_pool.connection_kwargs["port"], answered_as(["1", "2"])):
        response = binary_infer(client, [jpeg, read_photo("coffee.jpg")])  # two jobs, one per version
    assert response.status_code == 200, response.data
    assert split(response)[0]["model_version"] == "1,2"


def test_a_named_version_goes_to_its_own_workers_only(client, served, jpeg):
    serve_version(served, "w2", "2")  # a rolling switch: versions 1 and 2 both served
    port, path = served.connection_pool.connection_kwargs["port"], f"/v2/models/{MODEL}/versions/2/infer"
    with (
        FakeWorker(port, answered_as(["1"]), "w1") as v1,
        FakeWorker(port, answered_as(["2"]), "w2", version="2") as v2,
    ):
        for _ in range(4):
            response = binary_infer(client, [jpeg, read_photo("coffee.jpg")], path=path)
            assert response.status_code == 200 and split(response)[0]["model_version"] == "2"
            assert binary_infer(client, [jpeg]).status_code == 200  # unnamed: either version may answer
    assert v2.read_from.count(protocol.version_stream("2")) == 8  # every named image, from its version's stream
    assert len(v1.jobs) + v2.read_from.count(protocol.JOB_STREAM) == 4  # the shared stream held the unnamed only


def test_a_named_version_nobody_serves_any_more_is_a_quick_503(client, served, jpeg):
    serve_version(served, "w2", "2")
    unloaded = threading.Timer(0.3, lambda: served.zrem(protocol.HEARTBEATS_KEY, "w2"))  # its worker moves on
    with FakeWorker(served.connection_pool.connection_kwargs["port"], answered_as(["1"])):  # reads ml:jobs only
        unloaded.start()
        started = time.monotonic()
        response = binary_infer(client, [jpeg], path=f"/v2/models/{MODEL}/versions/2/infer")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "no worker serves the version" in response.get_json()["error"]
    assert time.monotonic() - started < settings.REQUEST_TIMEOUT_S / 3  # not held until the deadline
    assert served.xlen(protocol.version_stream("2")) == 0  # its job was deleted, not left to a later worker


def test_with_no_worker_up_every_inference_is_a_503_at_once_and_queues_nothing(client, redis_env, jpeg):
    for path in (INFER, f"/v2/models/{MODEL}/versions/1/infer"):
        started = time.monotonic()
        response = binary_infer(client, [jpeg], path=path)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert "no worker is ready" in response.get_json()["error"] and time.monotonic() - started < 1
    assert not redis_env.exists(protocol.JOB_STREAM) or redis_env.xlen(protocol.JOB_STREAM) == 0


def test_with_no_worker_up_and_a_pool_scaling_from_zero_a_request_naming_no_version_waits_for_the_first_one(
    client, redis_env, jpeg, monkeypatch
):
    """What a pool scaled to zero needs: the job is queued (what wakes it) and answered by the worker that starts."""
    monkeypatch.setenv("SCALE_FROM_ZERO", "1")
    port = redis_env.connection_pool.connection_kwargs["port"]
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(binary_infer, client, [jpeg])
        wait_until(lambda: redis_env.exists(protocol.JOB_STREAM) and redis_env.xlen(protocol.JOB_STREAM), 5, "a job")
        assert not waiting.done()
        with FakeWorker(port, answered_as(["3"])):
            response = waiting.result(timeout=10)
    assert response.status_code == 200, response.data
    assert split(response)[0]["model_version"] == "3" and response.headers["X-Model-Version"] == "3"
    named = binary_infer(client, [jpeg], path=f"/v2/models/{MODEL}/versions/3/infer")
    assert named.status_code == 503 and "no worker is ready" in named.get_json()["error"]  # at once
    assert client.get(f"/v2/models/{MODEL}").status_code == 503  # the model is still not ready


def test_unreadable_heartbeats_queue_an_inference_as_predict_does_but_a_named_version_is_a_503(client, redis_env, jpeg):
    """A heartbeat set holding another type (a hand edit, until a worker moves it aside) proves nothing: a request
    naming no version goes to the shared queue, where a live worker answers; one naming a version cannot be checked."""
    redis_env.set(protocol.HEARTBEATS_KEY, "a hand edit")
    with FakeWorker(redis_env.connection_pool.connection_kwargs["port"], answered_as(["1"])):  # publishes no beat
        response = binary_infer(client, [jpeg])
        named = binary_infer(client, [jpeg], path=f"/v2/models/{MODEL}/versions/1/infer")
    assert response.status_code == 200, response.data
    assert split(response)[0]["model_version"] == "1"
    assert named.status_code == 503 and named.get_json() == {"error": "queue unavailable: ResponseError"}


def test_a_job_stream_holding_another_type_is_a_quick_503_for_its_requests_only(client, served, jpeg):
    serve_version(served, "w2", "2")
    served.set(protocol.version_stream("2"), "a hand edit")
    with FakeWorker(served.connection_pool.connection_kwargs["port"], answered_as(["1"])):  # reads ml:jobs only
        started = time.monotonic()
        response = binary_infer(client, [jpeg], path=f"/v2/models/{MODEL}/versions/2/infer")
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert time.monotonic() - started < settings.REQUEST_TIMEOUT_S / 3
        assert binary_infer(client, [jpeg]).status_code == 200  # the shared stream still serves
    assert served.get(protocol.version_stream("2")) == b"a hand edit"  # the API deletes no key it did not create


def test_an_answer_of_another_version_to_a_named_request_is_a_503(client, served, jpeg):
    serve_version(served, "w2", "2")  # a worker that switched to version 1 with a version 2 job in hand
    with FakeWorker(served.connection_pool.connection_kwargs["port"], answered_as(["1"]), version="2"):
        response = binary_infer(client, [jpeg], path=f"/v2/models/{MODEL}/versions/2/infer")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json() == {
        "error": "version 2 was switched out while this request waited (answered by 1); retry"
    }


@pytest.mark.parametrize(
    "path, status",
    [
        ("/v2/models/vgg16", 404),
        ("/v2/models/resnet50/versions/7", 404),
        ("/v2/models/vgg16/infer", 404),
        ("/v2/models/resnet50/versions/7/config", 404),
        ("/v2/nothing/here", 404),
    ],
)
def test_unknown_models_versions_and_routes_are_v2_404s(client, served, path, status):
    response = client.post(path, data=b"{}") if path.endswith("infer") else client.get(path)
    assert response.status_code == status and set(response.get_json()) == {"error"}


def test_binary_images_give_probabilities_in_order(client, served, jpeg):
    other = preprocess.PIXELS_BYTES and open(__import__("testkit").paths.PHOTOS / "coffee.jpg", "rb").read()
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer) as worker:
        response = binary_infer(client, [jpeg, other], params={"binary_data_output": True})
    assert response.status_code == 200, response.data
    header, data = split(response)
    assert header["model_name"] == MODEL and header["model_version"] == "1"
    [out] = header["outputs"]
    assert out["shape"] == [2, 1000] and out["parameters"]["binary_data_size"] == 8000 == len(data)
    probs = np.frombuffer(data, "<f4").reshape(2, 1000)
    jobs = sorted(worker.jobs, key=lambda f: f["pixels"] != preprocess.decode_pixels(jpeg).tobytes())
    for row, job in zip(probs, jobs):
        np.testing.assert_array_equal(row, fake_probs(job["pixels"]))
    assert all(job["probs"] == b"1" and b"explain" not in job for job in worker.jobs)


@pytest.mark.parametrize(
    "coding, encode, decode", [("gzip", gzip.compress, gzip.decompress), ("deflate", zlib.compress, zlib.decompress)]
)
def test_compressed_request_and_response_carry_the_same_answer(client, served, jpeg, coding, encode, decode):
    header, payload = image_header([jpeg])
    text = json.dumps(header).encode()
    length = {"Inference-Header-Content-Length": str(len(text))}
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer):
        plain = client.post(INFER, data=text + payload, headers=length)
        packed = client.post(
            INFER,
            data=encode(text + payload),
            headers={**length, "Content-Encoding": coding, "Accept-Encoding": coding},
        )
    assert plain.status_code == packed.status_code == 200, packed.data
    assert "Content-Encoding" not in plain.headers and plain.headers["Vary"] == "Accept-Encoding"
    assert packed.headers["Content-Encoding"] == coding and decode(packed.data) == plain.data


def test_a_request_holds_two_copies_of_its_images_while_parsed_and_one_while_its_jobs_wait(client, served, jpeg):
    """Never the body, its binary part and the items at once; once parsed, only the items. Traced by tracemalloc:
    the peak over the request, and what is held when the worker takes the job. The test client itself holds two
    copies of what it sends."""
    big = jpeg + bytes(4_000_000)  # bytes after the JPEG's end: decoded as the photo
    held = []

    def answer(fields: dict) -> dict:
        held.append(tracemalloc.get_traced_memory()[0])
        return v2_answer(fields)

    tracemalloc.start()
    try:
        with FakeWorker(served.connection_pool.connection_kwargs["port"], answer):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            response = binary_infer(client, [big])
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.data
    assert peak - before < 4.5 * len(big), (peak - before) / len(big)  # the client's 2 + the body + the items
    assert held[0] - before < 3.5 * len(big), (held[0] - before) / len(big)  # the client's 2 + the items


def test_json_request_and_outputs(client, served, jpeg):
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(jpeg).decode()]}
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer):
        response = client.post(
            INFER,
            json={
                "id": "req-1",
                "inputs": [tensor],
                "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}, {"name": "heatmap"}],
            },
        )
    body = response.get_json()
    assert response.status_code == 200 and body["id"] == "req-1"
    cls, heat = body["outputs"]
    probs = fake_probs(preprocess.decode_pixels(jpeg).tobytes())
    best = np.argsort(-probs, kind="stable")[:3]
    assert cls == {
        "name": "probabilities",
        "datatype": "BYTES",
        "shape": [1, 3],
        "data": [f"{probs[i]:f}:{i}:class{i}" for i in best],
    }
    assert heat["shape"] == [1, 7, 7] and heat["data"][48] == 1.0


def test_fp32_input_goes_to_the_worker_as_is(client, served):
    x = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype("<f4")
    tensor = {
        "name": "input",
        "datatype": "FP32",
        "shape": [1, 224, 224, 3],
        "parameters": {"binary_data_size": x.nbytes},
    }
    text = json.dumps(
        {"inputs": [tensor], "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}
    ).encode()
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer) as worker:
        response = client.post(
            INFER, data=text + x.tobytes(), headers={"Inference-Header-Content-Length": str(len(text))}
        )
    assert response.status_code == 200
    [job] = worker.jobs
    assert job["input"] == x.tobytes() and b"pixels" not in job and job["preprocess"] == b"tensor"
    np.testing.assert_array_equal(np.frombuffer(split(response)[1], "<f4"), fake_probs(x.tobytes()))


def test_each_image_is_looked_up_in_the_response_cache(client, served, jpeg):
    served.hset(protocol.worker_key("w1"), "model_sha256", "a" * 64)
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer) as worker:
        first = binary_infer(client, [jpeg], params={"binary_data_output": True})
    [job] = worker.jobs
    upload = images.decode(jpeg, None)
    assert job["cache"].decode() == v2_infer.item_digest(upload.sha256, upload.mode, 1, False)
    # the worker stores the answer under the model's hash and the digest; no worker runs for the second request
    served.set(protocol.cache_key("a" * 64, job["cache"].decode()), json.dumps(v2_answer(job)))
    second = binary_infer(client, [jpeg], params={"binary_data_output": True})
    assert second.status_code == 200 and split(second)[1] == split(first)[1]


def test_undecodable_image_is_a_400_before_any_job(client, served, jpeg):
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer) as worker:
        response = binary_infer(client, [jpeg, b"not an image"])
    assert response.status_code == 400 and "image" in response.get_json()["error"] and worker.jobs == []


def test_worker_invalid_image_is_a_400(client, served, jpeg):
    with FakeWorker(served.connection_pool.connection_kwargs["port"], error_result("invalid_image", "bad pixels")):
        response = binary_infer(client, [jpeg])
    assert response.status_code == 400 and response.get_json() == {"error": "bad pixels"}


@pytest.mark.parametrize(
    "body, headers",
    [
        (b"{not json", {}),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "x"}),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "100000"}),
        (b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [100000000], "data": []}]}', {}),
        (
            b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 50}}]}',
            {},
        ),
        (b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [9], "data": []}]}', {}),
        (b'{"inputs": []}', {"Content-Encoding": "gzip"}),
        (b'{"inputs": ' + b"[" * 100_000, {}),  # nested deeper than the interpreter's recursion limit
    ],
)
def test_malformed_requests_are_v2_400s(client, served, body, headers):
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 400 and set(response.get_json()) == {"error"}


def test_truncated_binary_body_is_a_400(client, served, jpeg):
    header, payload = image_header([jpeg])
    text = json.dumps(header).encode()
    response = client.post(
        INFER, data=text + payload[:-10], headers={"Inference-Header-Content-Length": str(len(text))}
    )
    assert response.status_code == 400 and "binary_data_size" in response.get_json()["error"]


def test_admission_counts_images(client, served, jpeg, monkeypatch):
    monkeypatch.setenv("MAX_QUEUE_DEPTH", "3")
    served.xgroup_create(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, id="0", mkstream=True)
    served.xadd(protocol.JOB_STREAM, {"id": "waiting"})
    served.xadd(protocol.JOB_STREAM, {"id": "waiting-too"})
    response = binary_infer(client, [jpeg, jpeg])  # 2 queued + 2 images > 3
    assert (
        response.status_code == 503
        and response.headers["Retry-After"]
        and "queue is full" in response.get_json()["error"]
    )
    assert served.xlen(protocol.JOB_STREAM) == 2  # nothing of the refused batch was queued


def test_request_that_waited_too_long_is_shed(client, served, jpeg):
    response = binary_infer(client, [jpeg], headers={"X-Request-Start": f"t={time.time() - 60:.3f}"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def test_broker_down_is_a_fast_503(client, jpeg):
    response = binary_infer(client, [jpeg])
    assert response.status_code == 503 and set(response.get_json()) == {"error"}


def test_no_answer_in_time_is_a_504(client, served, jpeg, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.5")
    with FakeWorker(served.connection_pool.connection_kwargs["port"], lambda fields: None):
        response = binary_infer(client, [jpeg, jpeg])
    assert response.status_code == 504 and set(response.get_json()) == {"error"}


def test_body_over_the_limit_is_a_v2_413(app, served):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = app.test_client().post(INFER, data=b"x" * 2000)
    assert response.status_code == 413 and set(response.get_json()) == {"error"}
    bomb = app.test_client().post(INFER, data=zlib.compress(b" " * 2000), headers={"Content-Encoding": "deflate"})
    assert bomb.status_code == 413 and "inflates to more than 1000 bytes" in bomb.get_json()["error"]


def test_json_that_could_not_be_parsed_within_the_decode_budget_is_a_413_before_parsing(client, served, monkeypatch):
    monkeypatch.setenv("DECODE_MEMORY_MB", "16")
    empties = b"{}," * 1_000_000  # 3 MB that would parse into ~75 MB of empty dicts
    body = (
        b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 224, 224, 3], "data": [' + empties + b"0]}]}"
    )
    response = client.post(INFER, data=body)
    assert response.status_code == 413 and "send the tensor as binary data" in response.get_json()["error"]


def test_routes_are_labelled_in_the_metrics(client, served, jpeg):
    import metrics

    before = metrics.REQUESTS.labels(endpoint="/v2/models/<name>/infer", method="POST", status="400")._value.get()
    binary_infer(client, [b"nope"])
    after = metrics.REQUESTS.labels(endpoint="/v2/models/<name>/infer", method="POST", status="400")._value.get()
    assert after == before + 1


# What a mutation may put in place of any value of a valid request: wrong types, empty and huge values, the names of
# other fields. Every mutated request must be answered with a V2 error or an answer, never a 500.
MUTANTS = [None, True, 0, -1, 2**63, 1.5, "", "x", "FP32", "image", "probabilities", [], {}, [1], ["x"], {"a": 1}]


def _mutate(value, rng):
    """`value` with one random change somewhere inside it: replaced, removed, duplicated or a field added."""
    if isinstance(value, dict) and value:
        key, r = rng.choice(list(value)), rng.random()
        if r < 0.3:
            value[key] = rng.choice(MUTANTS)
        elif r < 0.45:
            del value[key]
        elif r < 0.55:
            value[rng.choice(["parameters", "shape", "datatype", "name", "data", "classification", "binary_data"])] = (
                rng.choice(MUTANTS)
            )
        else:
            value[key] = _mutate(value[key], rng)
    elif isinstance(value, list) and value:
        i, r = rng.randrange(len(value)), rng.random()
        if r < 0.3:
            value[i] = rng.choice(MUTANTS)
        elif r < 0.45:
            value.append(json.loads(json.dumps(value[i])))
        elif r < 0.55:
            del value[i]
        else:
            value[i] = _mutate(value[i], rng)
    return json.loads(json.dumps(value))  # no value shared between requests


def test_mutated_requests_to_a_served_model_are_never_a_500(client, served, jpeg):
    """A seeded fuzz of inference requests that reach the parser (a worker serves the model): JSON and binary."""
    rng = random.Random(20261205)
    image = base64.b64encode(jpeg).decode()
    statuses = []
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer):
        for n in range(300):
            request = {
                "id": "r",
                "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [image]}],
                "outputs": [{"name": "probabilities", "parameters": {"classification": 2, "binary_data": False}}],
            }
            for _ in range(rng.randint(1, 3)):
                request = _mutate(request, rng)
            body, headers = json.dumps(request).encode(), {}
            if n % 3 == 0:  # the binary extension: the image after the JSON, its size declared or not
                blob = v2_codec.serialize_bytes([jpeg])
                headers["Inference-Header-Content-Length"] = str(len(body) + rng.choice([0, 0, 1, -1]))
                body += blob[: rng.choice([len(blob), len(blob) // 2])]
            response = client.post(INFER, data=body, headers=headers)
            statuses.append(response.status_code)
            assert response.status_code in (200, 400), (request, response.data[:300])
            if response.status_code != 200:
                assert set(response.get_json()) == {"error"}, response.data[:300]
    assert statuses.count(200) >= 10 and statuses.count(400) >= 100  # mutations both kept and broke requests


def test_every_job_of_a_batch_carries_the_requests_id(client, served, jpeg):
    with FakeWorker(served.connection_pool.connection_kwargs["port"], v2_answer) as worker:
        response = binary_infer(client, [jpeg, jpeg], headers={"X-Request-ID": "batch-9"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "batch-9"
    assert [job["rid"] for job in worker.jobs] == [b"batch-9", b"batch-9"]
