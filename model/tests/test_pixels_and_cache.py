"""The worker's side of decode-once and of the response cache, against a real redis-server (tiny model)."""

from __future__ import annotations

import json
import time
import uuid

import numpy as np

from resnet_common import protocol
from helpers import enqueue, photo, result
from resnet_common.preprocess import PIXELS_BYTES, decode_pixels, normalize_pixels, preprocess_bytes

DIGEST = "d" * 64


def test_normalised_pixels_equal_the_full_preprocessing():
    """Shipping uint8 pixels and normalising in the worker is bit-identical to decoding there."""
    for name in ("cat.jpg", "coffee.jpg", "grace_hopper.jpg"):
        np.testing.assert_array_equal(normalize_pixels(decode_pixels(photo(name))), preprocess_bytes(photo(name)))


def test_pixels_are_classified_and_the_image_field_is_not_needed(r, make_worker):
    worker = make_worker()
    job_id = enqueue(r, photo("coffee.jpg"))
    assert b"image" not in r.xrange(protocol.JOB_STREAM)[0][1]
    assert len(r.xrange(protocol.JOB_STREAM)[0][1][b"pixels"]) == PIXELS_BYTES
    worker.step(block=False)
    assert result(r, job_id, timeout=1)["ok"] is True


def test_old_style_image_job_is_refused_not_decoded(r, make_worker):
    """A job carrying the encoded upload (`image`) would be decoded outside the API's decode budget: refused."""
    worker = make_worker()
    job_id, other = uuid.uuid4().hex, enqueue(r, photo())
    now = time.time()
    r.xadd(
        protocol.JOB_STREAM,
        {"id": job_id, "image": photo(), "enqueued": repr(now), "deadline": repr(now + 30), "top_k": "5"},
    )
    worker.step(block=False)
    worker.step(block=False)
    refused = result(r, job_id, timeout=1)
    assert refused["ok"] is False and refused["error"] == "invalid_image" and "pixels" in refused["message"]
    assert result(r, other, timeout=1)["ok"] is True  # its neighbour is answered


def test_pixels_of_the_wrong_size_are_an_invalid_image(r, make_worker):
    worker = make_worker()
    good = enqueue(r, photo())
    bad = enqueue(r, photo(), pixels=b"\x00" * 100)
    worker.step(block=False)
    res = result(r, bad, timeout=1)
    assert res["error"] == "invalid_image" and "expected 150528" in res["message"]
    assert result(r, good, timeout=1)["ok"] is True


def test_ok_answer_is_cached_under_the_model_hash_with_a_ttl(r, make_worker):
    worker = make_worker(CACHE_TTL_S=120)
    job_id = enqueue(r, photo(), cache=DIGEST)
    worker.step(block=False)
    answer = result(r, job_id, timeout=1)
    sha = worker.classifier.handle.sha256
    assert len(sha) == 64
    key = protocol.cache_key(sha, DIGEST)
    assert json.loads(r.get(key)) == answer
    assert 0 < r.ttl(key) <= 120
    assert int(r.get(protocol.CACHE_BYTES_KEY)) == int(r.hget(protocol.CACHE_SIZES_KEY, key)) > len(r.get(key))


def test_nothing_is_cached_without_a_digest_or_for_errors_or_with_ttl_0(r, make_worker):
    worker = make_worker()
    enqueue(r, photo())  # the API's cache is off: no digest
    enqueue(r, b"%PDF-1.4 not an image", cache=DIGEST)  # invalid image
    worker.step(block=False)
    off = make_worker("w-2", CACHE_TTL_S=0)
    last = enqueue(r, photo(), cache=DIGEST)
    off.step(block=False)
    assert result(r, last, timeout=1)["ok"] is True
    assert not r.keys(protocol.CACHE_KEY_PREFIX + "*")


def test_cache_is_bounded_in_bytes_oldest_first_and_never_touches_jobs(r, make_worker):
    worker = make_worker()
    enqueue(r, photo())  # a queued job must survive any trimming
    store = worker.queue._cache_store
    value = "x" * 300
    keys = [protocol.cache_key("m" * 64, f"{i:064d}") for i in range(10)]
    for i, key in enumerate(keys):
        store(
            keys=[key, protocol.CACHE_INDEX_KEY, protocol.CACHE_SIZES_KEY, protocol.CACHE_BYTES_KEY],
            args=[value, 60, repr(1000.0 + i), 2000],
        )
    kept = [k for k in keys if r.exists(k)]
    assert kept == keys[-len(kept) :] and 3 <= len(kept) < 10  # newest kept, oldest dropped
    assert int(r.get(protocol.CACHE_BYTES_KEY)) <= 2000
    assert r.zcard(protocol.CACHE_INDEX_KEY) == r.hlen(protocol.CACHE_SIZES_KEY) == len(kept)
    assert r.xlen(protocol.JOB_STREAM) == 1
    # entries older than the TTL are forgotten at the next store
    store(
        keys=[keys[0], protocol.CACHE_INDEX_KEY, protocol.CACHE_SIZES_KEY, protocol.CACHE_BYTES_KEY],
        args=[value, 60, repr(5000.0), 2000],
    )
    assert [k for k in keys if r.exists(k)] == [keys[0]]


def test_a_worker_takes_only_its_share_when_peers_are_alive(r, make_worker):
    """8 jobs in flight, 2 live workers: the first batch takes 4, and the transaction answering it reads ahead
    the worker's share of the 4 left, 2, so the peer is not left idle."""
    worker = make_worker()
    r.zadd(protocol.HEARTBEATS_KEY, {"w-test": time.time(), "peer": time.time()})
    ids = [enqueue(r, photo()) for _ in range(8)]
    assert worker.step(block=False) == 4
    assert [result(r, i, timeout=1)["batch_size"] for i in ids[:4]] == [4] * 4
    assert worker.queue.carried == 2 and r.xpending(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)["pending"] == 2
    r.zrem(protocol.HEARTBEATS_KEY, "peer")  # alone again: what it read ahead, then everything waiting
    assert worker.step(block=False) == 2
    assert worker.queue.carried == 2  # alone: its share is all that is left
    assert worker.step(block=False) == 2
    assert worker.queue.carried == 0 and r.xlen(protocol.JOB_STREAM) == 0
    assert all(result(r, i, timeout=1)["ok"] for i in ids[4:])


def test_greedy_reads_when_batch_share_is_off(r, make_worker):
    worker = make_worker(BATCH_SHARE=0)
    r.zadd(protocol.HEARTBEATS_KEY, {"w-test": time.time(), "peer": time.time()})
    for _ in range(6):
        enqueue(r, photo())
    assert worker.step(block=False) == 6
