"""The one reader of Keras-format class indexes: names in class order, or the reason the index cannot name them."""

import pytest

from resnet_common.class_index import index_names


def test_names_come_in_class_order_whatever_the_key_order():
    assert index_names({"1": ["n2", "rose"], "0": ["n1", "daisy"]}, "x") == ["daisy", "rose"]
    assert index_names({}, "x") == []  # the caller decides whether no class is an error


@pytest.mark.parametrize(
    "index, message",
    [
        (["daisy"], "flowers.json must be a Keras class index"),
        ({"0": ["n1", "daisy"], "2": ["n2", "rose"]}, "flowers.json: class 1 is null; each of 0…1 needs"),
        ({"0": ["n1", ""]}, 'class 0 is \\["n1", ""\\]'),
        ({"0": "daisy"}, 'class 0 is "daisy"'),
        ({"0": ["n1", "daisy", "extra"]}, "class 0 is"),
    ],
)
def test_an_index_that_cannot_name_its_classes_is_refused_with_the_reason(index, message):
    with pytest.raises(ValueError, match=message):
        index_names(index, "flowers.json")
