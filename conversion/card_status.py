"""Is the model in MODEL_DIR up to date for the requested weights?  Exit 0 = yes, 1 = convert again, 2 = bad request.

    .venv-convert/bin/python conversion/card_status.py --weights random:0 --model-dir model/artifacts

Up to date means: the card exists, it declares the `features` output (class activation maps), it was made from the
same weights (same source; same seed for random and the saved weights file still has the recorded sha256; same sha256
for a file; imagenet for imagenet) and the same class names (LABELS, default ImageNet's), and every ONNX file it
lists exists with the recorded sha256. Imports no TensorFlow, so it is quick.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from class_names import load_class_index, names_digest
from model_card import read_card
from weights import (
    WeightsError,
    WeightsSpec,
    keras_cache_file,
    parse_weights_spec,
    random_weights_filename,
    sha256_file,
)


@functools.cache
def imagenet_digest() -> str:
    return names_digest(load_class_index())


def _file_matches(path: Path, sha256: str | None) -> bool:
    return path.is_file() and sha256 is not None and sha256_file(path) == sha256


def stale_reason(
    card: dict[str, Any] | None,
    spec: WeightsSpec,
    model_dir: Path,
    need_int8: bool = False,
    labels: dict[str, list[str]] | None = None,
) -> str | None:
    """None when the card matches the request (`labels`: the class index asked for, default ImageNet's), else a
    short human reason."""
    if card is None:
        return "no readable model_card.json"
    asked = names_digest(labels) if labels else imagenet_digest()
    if card.get("labels_sha256", imagenet_digest()) != asked:  # a card without the field was made with ImageNet's
        return "card was made with other class names (LABELS)"
    weights = card.get("weights") or {}
    if weights.get("source") != spec.source:
        return f"card was made from {weights.get('source')!r} weights, {spec.source!r} requested"
    if spec.source == "random":
        if weights.get("seed") != spec.seed:
            return f"card has seed {weights.get('seed')}, seed {spec.seed} requested"
        assert spec.seed is not None
        if not _file_matches(model_dir / random_weights_filename(spec.seed), weights.get("sha256")):
            return "saved random weights file is missing or changed"
    if spec.source == "file":
        assert spec.path is not None
        if sha256_file(spec.path) != weights.get("sha256"):
            return f"{spec.path} differs from the weights the card was made from"
    if spec.source == "imagenet":
        cached = keras_cache_file()
        if cached.is_file() and sha256_file(cached) != weights.get("sha256"):
            return f"Keras' cached ImageNet weights {cached} differ from the card's"
    if (card.get("feature_map") or {}).get("output") != "features":
        return "the model predates the feature map output that class activation maps need"
    variants = card.get("variants") or {}
    if "fp32" not in variants or (need_int8 and "int8" not in variants):
        return "requested variant missing from the card"
    for name, variant in variants.items():
        if not _file_matches(model_dir / str(variant.get("file")), variant.get("sha256")):
            return f"{name} ONNX file missing or changed"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="imagenet | random | random:SEED | <path to .h5>")
    parser.add_argument("--seed", type=int, default=None, help="seed for --weights random (default 0)")
    parser.add_argument("--model-dir", type=Path, required=True, help="folder holding model_card.json")
    parser.add_argument("--int8", action="store_true", help="also require the INT8 variant")
    parser.add_argument("--labels", type=Path, default=None, help="the class names asked for (as convert.py)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no message, exit code only")
    args = parser.parse_args(argv)
    try:
        spec = parse_weights_spec(args.weights, args.seed)
        labels = load_class_index(args.labels) if args.labels else None
    except WeightsError as exc:
        print(f"card_status: {exc}", file=sys.stderr)
        return 2
    reason = stale_reason(read_card(args.model_dir), spec, args.model_dir, args.int8, labels)
    if not args.quiet:
        print(f"model in {args.model_dir}: " + ("up to date" if reason is None else f"needs conversion ({reason})"))
    return 0 if reason is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
