"""The queue protocol's names are a contract between the API and the workers (docs/queue-protocol.md): pinned here."""

from resnet_common import protocol


def test_redis_keys_are_pinned():
    assert (protocol.JOB_STREAM, protocol.CONSUMER_GROUP, protocol.DEADLETTER_STREAM, protocol.HEARTBEATS_KEY) == (
        "ml:jobs",
        "ml:workers",
        "ml:deadletter",
        "ml:heartbeats",
    )
    assert protocol.result_key("abc") == "ml:result:abc"
    assert protocol.version_stream("2") == "ml:jobs:v2"
    assert protocol.version_stream("") == "ml:jobs:v1"  # a worker serving a MODEL_DIR reports no version: "1"
    assert protocol.worker_key("host-1-0") == "ml:worker:host-1-0"
    assert protocol.set_aside_key("ml:jobs") == "ml:set-aside:ml:jobs"
    assert protocol.cache_key("m" * 64, "d" * 64) == f"ml:cache:{'m' * 64}:{'d' * 64}"
    assert (protocol.CACHE_INDEX_KEY, protocol.CACHE_SIZES_KEY, protocol.CACHE_BYTES_KEY) == (
        "ml:cache-index",
        "ml:cache-sizes",
        "ml:cache-bytes",
    )


def test_error_kinds_and_top_k_limits_are_pinned():
    assert [e.value for e in protocol.ErrorKind] == ["invalid_image", "inference_failed", "dead_letter"]
    assert protocol.ErrorKind.INVALID_IMAGE == "invalid_image"  # compares equal to the JSON field's text
    assert (protocol.TOP_K_MIN, protocol.TOP_K_MAX, protocol.TOP_K_DEFAULT) == (1, 10, 5)
