"""The Open Inference Protocol's job fields: `input` (a preprocessed float32 tensor) and `probs` (full vector)."""

from __future__ import annotations

import base64
import logging

import numpy as np

from resnet_common import protocol
from helpers import enqueue, photo, result
from resnet_common.preprocess import decode_pixels, normalize_pixels


def _probs(res: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(res["probs"]), dtype="<f4")


def test_probs_flag_returns_the_whole_vector_matching_top_k(r, make_worker):
    worker = make_worker()
    asked = enqueue(r, photo("coffee.jpg"), top_k=3, probs="1")
    plain = enqueue(r, photo("coffee.jpg"), top_k=3)
    worker.step(block=False)
    res, other = result(r, asked, timeout=1), result(r, plain, timeout=1)
    assert "probs" not in other
    probs = _probs(res)
    assert probs.shape == (1000,) and abs(float(probs.sum()) - 1) < 1e-3
    best = np.argsort(-probs, kind="stable")[:3]
    assert [round(float(probs[i]), 4) for i in best] == [p for _, p in res["top_k"]]


def test_float_input_skips_decoding_and_equals_the_pixel_path(r, make_worker):
    worker = make_worker()
    tensor = normalize_pixels(decode_pixels(photo("coffee.jpg"))).astype("<f4")
    via_pixels = enqueue(r, photo("coffee.jpg"), probs="1")
    via_tensor = enqueue(r, photo("coffee.jpg"), probs="1", input=tensor.tobytes(), pixels=b"")
    worker.step(block=False)
    a, b = result(r, via_pixels, timeout=1), result(r, via_tensor, timeout=1)
    assert b["ok"] is True and a["top_k"] == b["top_k"]
    np.testing.assert_allclose(_probs(a), _probs(b), rtol=0, atol=1e-6)


def test_float_input_of_the_wrong_size_or_not_finite_fails_alone(r, make_worker):
    worker = make_worker()
    short = enqueue(r, photo(), input=b"\0" * 12, pixels=b"")
    nan = np.full((224, 224, 3), np.nan, dtype="<f4").tobytes()
    bad = enqueue(r, photo(), input=nan, pixels=b"")
    good = enqueue(r, photo())
    worker.step(block=False)
    for job_id in (short, bad):
        res = result(r, job_id, timeout=1)
        assert res["ok"] is False and res["error"] == protocol.ErrorKind.INVALID_IMAGE.value
    assert result(r, good, timeout=1)["ok"] is True


def test_dead_letter_entry_leaves_the_tensor_out(r, make_worker):
    worker = make_worker(MAX_DELIVERIES=0)
    tensor = np.zeros((224, 224, 3), dtype="<f4").tobytes()
    enqueue(r, photo(), input=tensor, pixels=b"")
    worker.step(block=False)
    [(_, fields)] = r.xrange(protocol.DEADLETTER_STREAM)
    assert b"input" not in fields and b"pixels" not in fields and b"reason" in fields


def test_each_input_lands_in_its_own_slot_of_the_reused_batch(r, make_worker):
    """Inputs are written into one batch array reused by every batch: a job refused half-way through a batch, or
    a smaller batch after a larger one, must not shift or mix anyone's input."""
    worker = make_worker()
    tensor = normalize_pixels(decode_pixels(photo("cat.jpg"))).astype("<f4")
    mixed = [
        enqueue(r, photo("coffee.jpg"), probs="1"),
        enqueue(r, photo(), input=b"\0" * 12, pixels=b""),
        enqueue(r, photo("cat.jpg"), probs="1", input=tensor.tobytes(), pixels=b""),
        enqueue(r, photo("rocket.jpg"), probs="1"),
    ]
    worker.step(block=False)
    coffee, refused, cat, rocket = (result(r, job_id, timeout=1) for job_id in mixed)
    assert refused["ok"] is False and coffee["batch_size"] == 3
    for name, answer in (("rocket.jpg", rocket), ("cat.jpg", cat), ("coffee.jpg", coffee)):
        alone = enqueue(r, photo(name), probs="1")
        worker.step(block=False)
        np.testing.assert_allclose(_probs(result(r, alone, timeout=1)), _probs(answer), rtol=0, atol=1e-5)


def test_a_failed_job_is_logged_under_its_request_id_which_the_dead_letter_keeps(r, make_worker, caplog):
    worker = make_worker(MAX_DELIVERIES=0)
    enqueue(r, photo(), rid="trace-dead")
    worker.step(block=False)
    [(_, fields)] = r.xrange(protocol.DEADLETTER_STREAM)
    assert fields[b"rid"] == b"trace-dead"
    assert any("request trace-dead" in m and "dead-lettered" in m for m in caplog.messages)


def test_an_input_the_worker_refuses_is_logged_under_its_request_id(r, make_worker, caplog):
    worker = make_worker()
    enqueue(r, photo(), input=b"\0" * 12, pixels=b"", rid="trace-bad")
    with caplog.at_level(logging.INFO, logger="worker"):
        worker.step(block=False)
    assert any("request trace-bad" in m and "invalid image" in m for m in caplog.messages)
