"""Class names in Keras' naming, from a model version's class index (or the ImageNet one shipped with the service)."""

from __future__ import annotations

import json

from resnet_common.class_index import index_names


def load_labels(path: str) -> list[str]:
    """`{"0": ["n01440764", "tench"], …}` → ["tench", …] (resnet_common.class_index); refuses a file that names no
    class or whose keys are not exactly 0…N-1, each with a name (a fine-tuned head's index holds its own N classes)."""
    try:
        with open(path, encoding="utf-8") as fh:
            index = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"class index {path} is missing: generate it with conversion/make_class_index.py"
        ) from None
    names = index_names(index, f"class index {path}")
    if not names:
        raise ValueError(f"class index {path} names no class")
    return names
