"""ImageNet class names in Keras' naming, from the Keras-format index shipped with the service."""

from __future__ import annotations

import json

NUM_CLASSES = 1000


def load_labels(path: str, num_classes: int = NUM_CLASSES) -> list[str]:
    """`{"0": ["n01440764", "tench"], …}` → ["tench", …]; refuses a file that does not cover every class."""
    try:
        with open(path, encoding="utf-8") as fh:
            index = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"class index {path} is missing: generate it with conversion/make_class_index.py"
        ) from None
    names = [index.get(str(i), [None, None])[1] for i in range(num_classes)]
    missing = [i for i, name in enumerate(names) if not name]
    if missing or len(index) != num_classes:
        raise ValueError(f"class index {path} has {len(index)} entries; missing indices {missing[:5]}")
    return names
