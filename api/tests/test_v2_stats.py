"""v2_stats: Triton's statistics extension, read back from the counters the inference route feeds."""

from __future__ import annotations

import json
import time

from resnet_common import protocol
from fakeworker import FakeWorker, heartbeat
from test_v2_routes import MODEL, binary_infer, v2_answer
from testkit import photo as read_photo


def batch_of_three(fields: dict) -> dict:
    """Every image computed by version 9 in a batch of 3 that ran 30 ms, after 4 ms in the queue."""
    return v2_answer(fields) | {"model_version": "9", "batch_size": 3, "queued_ms": 4.0, "inference_ms": 30.0}


def test_statistics_count_requests_images_and_batches_of_a_version(client, redis_env):
    heartbeat(redis_env, "w9", model_version="9")  # a version no other test uses: its counters start at zero
    path = f"/v2/models/{MODEL}/versions/9"
    started_ms = time.time() * 1000
    with FakeWorker(redis_env.connection_pool.connection_kwargs["port"], batch_of_three, version="9"):
        assert (
            binary_infer(client, [read_photo("cat.jpg"), read_photo("coffee.jpg")], path=f"{path}/infer").status_code
            == 200
        )
        assert binary_infer(client, [read_photo("rocket.jpg")], path=f"{path}/infer").status_code == 200
        assert binary_infer(client, [b"not an image"], path=f"{path}/infer").status_code == 400
    body = client.get(f"{path}/stats").get_json()
    [stat] = body["model_stats"]
    assert (stat["name"], stat["version"], stat["inference_count"], stat["execution_count"]) == (MODEL, "9", 3, 1)
    stats = stat["inference_stats"]
    assert (stats["success"]["count"], stats["fail"]["count"], stats["cache_hit"]["count"]) == (2, 1, 0)
    assert stats["success"]["ns"] > 0 and stats["fail"]["ns"] > 0
    assert stats["queue"] == {"count": 3, "ns": 12_000_000}
    assert stats["compute_infer"] == {"count": 3, "ns": 90_000_000}
    assert stats["compute_input"]["count"] == 3 and stats["compute_input"]["ns"] > 0  # the API decoded each photo
    assert stats["compute_output"]["count"] == 3 and stats["compute_output"]["ns"] > 0
    assert stat["batch_stats"] == [{"batch_size": 3, "compute_infer": {"count": 1, "ns": 30_000_000}}]
    assert started_ms <= stat["last_inference"] <= time.time() * 1000


def test_statistics_list_every_served_version_and_refuse_unknown_ones(client, redis_env):
    heartbeat(redis_env, "w1")
    heartbeat(redis_env, "w8", model_version="8")
    for path in (f"/v2/models/{MODEL}/stats", "/v2/models/stats"):
        body = client.get(path).get_json()
        assert [(s["name"], s["version"]) for s in body["model_stats"]] == [(MODEL, "1"), (MODEL, "8")]
    never = next(s for s in body["model_stats"] if s["version"] == "8")
    assert never["inference_count"] == 0 and never["inference_stats"]["success"] == {"count": 0, "ns": 0}
    assert client.get(f"/v2/models/{MODEL}/versions/5/stats").status_code == 404
    assert client.get("/v2/models/vgg16/stats").status_code == 404


def test_an_image_answered_from_the_cache_is_a_cache_hit_not_an_inference(client, redis_env):
    heartbeat(redis_env, "w6", model_version="6", model_sha256="b" * 64)
    path = f"/v2/models/{MODEL}/versions/6"
    answer = lambda fields: v2_answer(fields) | {"model_version": "6"}  # noqa: E731
    with FakeWorker(redis_env.connection_pool.connection_kwargs["port"], answer, version="6") as worker:
        assert binary_infer(client, [read_photo("cat.jpg")], path=f"{path}/infer").status_code == 200
    [job] = worker.jobs  # stored as the worker would, under the model's hash and the job's digest
    redis_env.set(protocol.cache_key("b" * 64, job["cache"].decode()), json.dumps(answer(job)))
    assert binary_infer(client, [read_photo("cat.jpg")], path=f"{path}/infer").status_code == 200
    [stat] = client.get(f"{path}/stats").get_json()["model_stats"]
    stats = stat["inference_stats"]
    assert (stat["inference_count"], stats["success"]["count"], stats["cache_hit"]["count"]) == (1, 2, 1)
    assert stats["cache_hit"]["ns"] > 0 and stats["compute_infer"]["count"] == 1
