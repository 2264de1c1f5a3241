"""RUNTIME=openvino: the same ONNX file compiled by OpenVINO, behind the session calls the worker makes."""

from __future__ import annotations

import numpy as np
import pytest

import session
from settings import SettingsError, load


def _batch(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 50, (n, 224, 224, 3)).astype(np.float32)


def test_openvino_answers_what_onnxruntime_answers_for_every_batch_size(tiny_model_dir):
    """One compiled model serves the worker's varying batch sizes (the batch dimension stays dynamic)."""
    ort = session.create_session(load(MODEL_DIR=tiny_model_dir), threads=1, spin=False)
    ov = session.create_session(load(MODEL_DIR=tiny_model_dir, RUNTIME="openvino"), threads=1, spin=False)
    assert (ov.runtime, ort.runtime) == ("openvino", "onnxruntime")
    assert (ov.input_name, ov.output_name, ov.apply_softmax) == (ort.input_name, ort.output_name, ort.apply_softmax)
    assert [o.name for o in ov.session.get_outputs()] == [o.name for o in ort.session.get_outputs()]
    for mine, theirs in zip(
        ov.session.get_outputs() + ov.session.get_inputs(), ort.session.get_outputs() + ort.session.get_inputs()
    ):
        # ONNX Runtime names a dynamic dimension ("N"); OpenVINO's is None: the class-map check reads the others
        assert [d if isinstance(d, int) else None for d in theirs.shape] == list(mine.shape), mine.name
    names = [o.name for o in ort.session.get_outputs()]
    for n in (1, 3, 8, 2):
        batch = _batch(n, seed=n)
        got = ov.session.run(names, {ov.input_name: batch})
        want = ort.session.run(names, {ort.input_name: batch})
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype == np.float32
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_outputs_are_the_callers_own_and_the_input_is_left_as_it_was(tiny_model_dir):
    """The next run must not overwrite an answer already handed out; the worker reuses its batch array."""
    ov = session.create_session(load(MODEL_DIR=tiny_model_dir, RUNTIME="openvino"), threads=1, spin=False)
    first, second = _batch(2, seed=5), _batch(2, seed=6)
    kept = first.copy()
    [a] = ov.session.run([ov.output_name], {ov.input_name: first})
    a_copy = a.copy()
    [b] = ov.session.run([ov.output_name], {ov.input_name: second})
    np.testing.assert_array_equal(a, a_copy)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(first, kept)


def test_an_unknown_runtime_is_refused_by_name_when_the_settings_load(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("RUNTIME", "tensorrt")
    with pytest.raises(
        SettingsError, match=r"RUNTIME='tensorrt' is not a valid Runtime: expected one of \['onnxruntime'"
    ):
        load(MODEL_DIR=tiny_model_dir)
    with pytest.raises(ValueError, match="RUNTIME='tensorrt' is not one of"):
        session.open_session(tiny_model_dir + "/model.onnx", threads=1, spin=False, runtime="tensorrt")
