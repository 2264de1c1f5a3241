"""Class names in Keras' naming, from a model version's class index (or the ImageNet one shipped with the service)."""

from __future__ import annotations

import json


def load_labels(path: str) -> list[str]:
    """`{"0": ["n01440764", "tench"], …}` → ["tench", …]; refuses a file whose keys are not exactly 0…N-1, each
    with a name (a fine-tuned head's index holds its own N classes: conversion/class_names.py)."""
    try:
        with open(path, encoding="utf-8") as fh:
            index = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"class index {path} is missing: generate it with conversion/make_class_index.py"
        ) from None
    names = [(index.get(str(i)) or [None, None])[1] for i in range(len(index))]
    missing = [i for i, name in enumerate(names) if not name]
    if missing or not names:
        raise ValueError(f"class index {path} has {len(index)} entries; missing indices {missing[:5]}")
    return names
