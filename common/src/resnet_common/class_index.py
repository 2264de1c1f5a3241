"""A class index in Keras' format ({"0": ["n01440764", "tench"], …}): what every model version carries and its
workers answer with. One reader for the conversion (a LABELS file) and the workers (a version's class_index.json)."""

from __future__ import annotations

import json


def index_names(index: object, source: str) -> list[str]:
    """The names of a class index, class 0 first ([] for an empty one); ValueError naming `source` unless it is an
    object whose keys are exactly 0…N-1, each with ["id", "name"] and a name."""
    if not isinstance(index, dict):
        raise ValueError(f'{source} must be a Keras class index: {{"0": ["id", "name"], …}}')
    names = []
    for i in range(len(index)):
        entry = index.get(str(i))
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(s, str) for s in entry) and entry[1]):
            raise ValueError(
                f'{source}: class {i} is {json.dumps(entry)}; each of 0…{len(index) - 1} needs ["id", "name"]'
            )
        names.append(entry[1])
    return names
