"""The committed Keras-style class index is what make_class_index.py generates, with Keras' known names."""

import json
import re

import pytest

from make_class_index import DEFAULT_OUT, build_class_index, keras_name, render


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(DEFAULT_OUT.read_text(encoding="utf-8"))


def test_committed_file_is_up_to_date(committed):
    assert committed == build_class_index()
    assert DEFAULT_OUT.read_text(encoding="utf-8") == render(build_class_index())


@pytest.mark.parametrize(
    "index, wnid, name",
    [
        (0, "n01440764", "tench"),
        (248, "n02109961", "Eskimo_dog"),
        (264, "n02113186", "Cardigan"),
        (474, "n02963159", "cardigan"),
        (134, "n02012849", "crane"),
        (517, "n03126707", "crane"),
        (638, "n03710637", "maillot"),
        (639, "n03710721", "maillot"),
        (999, "n15075141", "toilet_tissue"),
    ],
)
def test_known_entries(committed, index, wnid, name):
    assert committed[str(index)] == [wnid, name]


def test_shape_of_the_index(committed):
    assert list(committed) == [str(i) for i in range(1000)]
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid, _ in committed.values())
    assert len({wnid for wnid, _ in committed.values()}) == 1000
    names = [name for _, name in committed.values()]
    assert sorted({n for n in names if names.count(n) > 1}) == ["crane", "maillot"]
    assert not any(" " in n for n in names)


def test_keras_name_takes_first_lemma_with_underscores():
    assert keras_name("great white shark, white shark, man-eater") == "great_white_shark"
    assert keras_name("jack-o'-lantern") == "jack-o'-lantern"
