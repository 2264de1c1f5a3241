"""LABELS, the class names of a fine-tuned head: read from a text file or a Keras class index, refused with the
reason when they cannot name the head's outputs, and written into the model folder the worker reads."""

import json

import pytest

from class_names import INDEX_NAME, LabelsError, load_class_index, names, names_digest, write_class_index
from make_class_index import DEFAULT_OUT as IMAGENET_INDEX


def test_a_text_file_names_one_class_per_line_in_output_order(tmp_path):
    path = tmp_path / "flowers.txt"
    path.write_text("daisy\n  dandelion \r\nrose\n\n")  # surrounding spaces and trailing blank lines do not count
    index = load_class_index(path)
    assert index == {"0": ["0", "daisy"], "1": ["1", "dandelion"], "2": ["2", "rose"]}
    assert names(index) == ["daisy", "dandelion", "rose"]
    path.write_bytes("\ufeffdaisy\r\nrose\r\n".encode())  # as Windows' Notepad saves it
    assert names(load_class_index(path)) == ["daisy", "rose"]


def test_a_keras_class_index_keeps_its_ids(tmp_path):
    path = tmp_path / "flowers.json"
    path.write_text(json.dumps({"1": ["n2", "rose"], "0": ["n1", "daisy"]}))
    assert load_class_index(path) == {"0": ["n1", "daisy"], "1": ["n2", "rose"]}
    imagenet = load_class_index()
    assert len(imagenet) == 1000 and imagenet == json.loads(IMAGENET_INDEX.read_text())


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("a.txt", "daisy\n\nrose\n", "line 2 is empty"),
        ("a.txt", "\n \n", "names no class"),
        ("a.json", "{}", "names no class"),
        ("a.json", "[1, 2]", "must be a Keras class index"),
        ("a.json", "{not json", "is not JSON"),
        ("a.json", json.dumps({"0": ["n1", "daisy"], "2": ["n2", "rose"]}), r"class 1 is null"),
        ("a.json", json.dumps({"0": ["n1", ""]}), 'class 0 is \\["n1", ""\\]'),
        ("a.txt", b"\xff\xfe daisy", "cannot be read"),
    ],
)
def test_unusable_labels_are_refused_with_the_reason(tmp_path, file, text, message):
    path = tmp_path / file
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(LabelsError, match=message):
        load_class_index(path)
    with pytest.raises(LabelsError, match="cannot be read"):
        load_class_index(tmp_path / "missing.txt")


def test_the_folder_gets_the_index_and_the_card_its_size_and_digest(tmp_path):
    index = {"0": ["0", "daisy"], "1": ["1", "rose"]}
    fields = write_class_index(tmp_path, index)
    assert fields == {"labels": INDEX_NAME, "classes": 2, "labels_sha256": names_digest(index)}
    assert json.loads((tmp_path / INDEX_NAME).read_text()) == index
    assert names_digest(index) != names_digest({"0": ["0", "rose"], "1": ["1", "daisy"]})  # the order matters
    assert names_digest(index) == names_digest({"0": ["a", "daisy"], "1": ["b", "rose"]})  # the ids do not


def test_the_onnx_file_carries_its_class_names_so_other_names_make_another_file(tmp_path):
    """Two versions of the same weights with other names must not share a sha256: the response cache is keyed by it."""
    import hashlib

    import onnx
    from export import class_names_of, name_classes
    from testkit.tiny_model import write_tiny_model

    write_tiny_model(tmp_path / "tiny.onnx", classes=2)
    digests = []
    for order in (["daisy", "rose"], ["rose", "daisy"]):
        proto = onnx.load(str(tmp_path / "tiny.onnx"))
        name_classes(proto, order)
        onnx.save(proto, str(tmp_path / "named.onnx"))
        assert class_names_of(tmp_path / "named.onnx") == order
        digests.append(hashlib.sha256((tmp_path / "named.onnx").read_bytes()).hexdigest())
    assert digests[0] != digests[1]
    assert class_names_of(tmp_path / "tiny.onnx") is None
