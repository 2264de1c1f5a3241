"""Labels file checks, worker topology defaults and the ONNX Runtime session options."""

from __future__ import annotations

import json

import pytest

import session
from labels import load_labels
from settings import load


def test_labels_in_index_order(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({str(i): [f"n{i}", f"name{i}"] for i in range(1000)}))
    names = load_labels(str(path))
    assert len(names) == 1000 and names[0] == "name0" and names[999] == "name999"


def test_a_head_of_its_own_classes_has_as_many_names_and_gaps_are_refused(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({str(i): [str(i), f"flower{i}"] for i in range(10)}))
    assert load_labels(str(path)) == [f"flower{i}" for i in range(10)]
    path.write_text(json.dumps({str(i): [f"n{i}", f"name{i}"] for i in range(1000) if i != 998}))
    with pytest.raises(ValueError, match=r"class 998 is null; each of 0…998 needs"):
        load_labels(str(path))
    path.write_text(json.dumps({"0": ["n0", ""], "1": ["n1", "b"]}))
    with pytest.raises(ValueError, match=r'class 0 is \["n0", ""\]'):
        load_labels(str(path))
    path.write_text("{}")
    with pytest.raises(ValueError, match="names no class"):
        load_labels(str(path))
    with pytest.raises(FileNotFoundError, match="make_class_index"):
        load_labels(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("cores,expected", [(1, (1, 1)), (2, (2, 1)), (16, (16, 1))])
def test_default_topology_fills_the_cores(cores, expected):
    workers, threads = session.default_topology(cores)
    assert (workers, threads) == expected and workers * threads <= cores


@pytest.mark.parametrize(
    "workers,threads,cores,expected",
    [
        (0, 0, 4, (4, 1)),
        (1, 0, 4, (1, 4)),
        (0, 2, 4, (2, 2)),
        (3, 0, 4, (3, 1)),
        (2, 2, 2, (2, 2)),
        (0, 8, 2, (1, 8)),
    ],
)
def test_resolve_topology_derives_what_is_unset(workers, threads, cores, expected):
    assert session.resolve_topology(load(WORKERS=workers, THREADS=threads), cores) == expected


def test_available_cores_respects_affinity():
    import os

    assert 1 <= session.available_cores() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    "spin,workers,expected", [("auto", 1, True), ("auto", 2, False), ("1", 4, True), ("0", 1, False)]
)
def test_spinning_off_when_processes_share_cores(spin, workers, expected):
    assert session.spinning(load(ORT_SPIN=spin), workers) is expected


def test_session_options_and_io_names(tiny_model_dir):
    handle = session.create_session(load(MODEL_DIR=tiny_model_dir), threads=1, spin=False)
    opts = handle.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.enable_mem_pattern is False  # batches of every size: no plan kept per shape
    assert (handle.input_name, handle.output_name, handle.apply_softmax) == ("input", "probabilities", False)
    assert handle.session.get_providers() == ["CPUExecutionProvider"]
    assert (handle.model, handle.variant) == ("Tiny", "fp32")


def test_memory_pattern_when_asked(tiny_model_dir):
    handle = session.create_session(load(MODEL_DIR=tiny_model_dir, ORT_MEM_PATTERN="1"), threads=1, spin=False)
    assert handle.session.get_session_options().enable_mem_pattern is True


def test_unknown_variant_and_missing_card(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="int8"):
        session.create_session(load(MODEL_DIR=tiny_model_dir, MODEL_VARIANT="int8"), 1, False)
    with pytest.raises(FileNotFoundError, match="make model"):
        session.create_session(load(MODEL_DIR=str(tmp_path)), 1, False)


def test_card_size_mismatch_is_refused(tiny_model_dir, tmp_path):
    import shutil

    shutil.copy(f"{tiny_model_dir}/tiny.onnx", tmp_path / "tiny.onnx")
    card = json.loads(open(f"{tiny_model_dir}/model_card.json").read())
    card["variants"]["fp32"]["bytes"] += 1
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="model card says"):
        session.create_session(load(MODEL_DIR=str(tmp_path)), 1, False)
