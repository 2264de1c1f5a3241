"""Convert keras.applications.ResNet50 to ONNX (tf2onnx), check it against Keras, write model_card.json.

Examples (from the repository root):
  .venv-convert/bin/python conversion/convert.py --weights random                     # seed 0, offline
  .venv-convert/bin/python conversion/convert.py --weights random:3 --out-dir /tmp/m
  .venv-convert/bin/python conversion/convert.py --weights imagenet                   # Keras download/cache
  .venv-convert/bin/python conversion/convert.py --weights ~/resnet50.weights.h5 --int8
  .venv-convert/bin/python conversion/convert.py --weights ~/flowers.weights.h5 --labels ~/flowers.txt  # own classes

Outputs in --out-dir: resnet50.onnx (input `input` float32 NHWC [N,224,224,3], already caffe-preprocessed;
outputs `logits`, `probabilities`, `features` = conv5_block3_out NCHW; metadata `class_names`), optional
resnet50.int8.onnx, class_index.json (class_names.py), model_card.json and, for random weights,
resnet50.random-seed<SEED>.weights.h5 (loadable with keras.applications.ResNet50(weights=...)).
Exit codes: 0 ok, 2 weights unavailable/bad request, 3 parity check failed (no card is left behind), 4 INT8 top-1
agreement on the held-out calibration images below --int8-min-agreement (no card is left behind).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from class_names import add_labels_option, load_class_index, names, write_class_index
from keras_model import require_head
from quantize_policy import DEFAULT_MIN_AGREEMENT
from weights import WeightsError, parse_weights_spec

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "model" / "artifacts"
DEFAULT_PHOTOS = REPO / "tests" / "data" / "photos"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (Keras download, cached in $KERAS_HOME/models; fails fast offline) | "
        "random | random:SEED (seeded initialisers, saved beside the model) | "
        "<path> to a Keras ResNet50 weights file (*.weights.h5 or legacy .h5). Default: imagenet",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for --weights random (default 0)")
    add_labels_option(p)
    p.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="model folder (MODEL_DIR), default %(default)s")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default %(default)s)")
    p.add_argument(
        "--photos", type=Path, default=DEFAULT_PHOTOS, help="real photos used by the parity check (default %(default)s)"
    )
    p.add_argument("--int8", action="store_true", help="also write resnet50.int8.onnx (static QDQ, U8/S8 per-channel)")
    p.add_argument(
        "--calibration-dir",
        type=Path,
        default=DEFAULT_PHOTOS,
        help="images for INT8 calibration and agreement (default %(default)s)",
    )
    p.add_argument(
        "--int8-min-agreement",
        type=float,
        default=float(os.environ.get("INT8_MIN_AGREEMENT") or DEFAULT_MIN_AGREEMENT),
        help="refuse an INT8 model whose top-1 agreement with fp32 on the held-out images is below this "
        "(INT8_MIN_AGREEMENT, default %(default)s)",
    )
    p.add_argument(
        "--int8-force",
        action="store_true",
        default=os.environ.get("INT8_FORCE", "0") == "1",
        help="publish the INT8 model even below --int8-min-agreement (INT8_FORCE=1)",
    )
    p.add_argument("--reduce-range", action="store_true", help="INT8: 7-bit weights (for CPUs without VNNI)")
    p.add_argument(
        "--serve",
        choices=["fp32", "int8"],
        default="fp32",
        help="variant the card's `serve` points to (default fp32; int8 needs --int8)",
    )
    args = p.parse_args(argv)
    if args.serve == "int8" and not args.int8:
        p.error("--serve int8 needs --int8")
    return args


def convert(args: argparse.Namespace) -> int:
    """The whole pipeline; every file is written to a temp name first, the card last."""
    started = time.perf_counter()
    spec = parse_weights_spec(args.weights, args.seed)
    index = load_class_index(args.labels)
    require_head(spec, len(index), args.labels)  # before TensorFlow: names that do not fit the head are refused
    if spec.source == "imagenet":  # fail before TensorFlow spends seconds importing, and before touching out_dir
        from weights import fetch_imagenet_weights

        fetch_imagenet_weights()
    out_dir: Path = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    import model_card as mc
    from atomic import publish, scratch_path
    from export import name_classes, save_onnx, to_onnx
    from flops import gflops_per_image
    from imageprep import list_images
    from keras_model import load_model, resnet50_reference
    from parity import check_parity
    from weights import sha256_file

    loaded = load_model(spec, out_dir, len(index))
    print(f"weights: {spec.source} {loaded.weights_path} sha256={loaded.weights_sha256[:12]}…", flush=True)
    proto = to_onnx(loaded.model, args.opset)
    name_classes(proto, names(index))
    gflops = gflops_per_image(proto)
    mc.remove_card(out_dir)  # from here on the folder no longer claims to hold a valid model
    fp32_path = out_dir / mc.FP32_NAME
    with scratch_path(fp32_path, suffix=".onnx") as candidate:
        save_onnx(proto, candidate)
        del proto
        parity = check_parity(
            loaded.model,
            resnet50_reference(loaded.weights_path),
            candidate,
            list_images(args.photos) if args.photos.is_dir() else [],
        )
        print(f"parity: {parity}", flush=True)
        if not parity.pop("ok"):
            f = parity["features"]
            print(
                f"PARITY FAILED: probabilities differ by {parity['max_abs_diff_probs']:.3g} (tolerance "
                f"{parity['tolerance_probs']}), features by {f['max_rel_diff_features']:.3g} relative (tolerance "
                f"{f['tolerance_features_rel']}), class maps by {f['max_abs_diff_cam']:.3g} (tolerance "
                f"{f['tolerance_cam']}); no model card written",
                file=sys.stderr,
            )
            return 3
        publish(candidate, fp32_path)
    variants = {"fp32": mc.variant_entry(fp32_path, sha256_file(fp32_path), gflops)}
    if args.int8:
        variants["int8"] = int8_variant(fp32_path, out_dir, args, spec.source, gflops)
    else:
        (out_dir / mc.INT8_NAME).unlink(missing_ok=True)  # an old int8 file would not match these weights
    card = mc.build_card(
        serve=args.serve,
        labels=write_class_index(out_dir, index),
        variants=variants,
        weights=mc.weights_entry(spec, loaded.weights_path, loaded.weights_sha256, out_dir),
        opset=args.opset,
        parity=parity,
        conversion_s=time.perf_counter() - started,
    )
    print(f"wrote {mc.write_card(out_dir, card)} in {card['conversion_seconds']} s")
    return 0


def int8_variant(fp32_path: Path, out_dir: Path, args: argparse.Namespace, source: str, gflops: float) -> dict:
    import model_card as mc
    from atomic import atomic_path
    from quantize import agreement, quantize, speed
    from quantize_policy import check_agreement
    from weights import sha256_file

    int8_path = out_dir / mc.INT8_NAME
    with atomic_path(int8_path, suffix=".onnx") as tmp:
        settings = quantize(fp32_path, tmp, args.calibration_dir, reduce_range=args.reduce_range)
        agree = agreement(fp32_path, tmp, args.calibration_dir)
        print(f"int8 agreement: {agree}", flush=True)
        check_agreement(agree, args.int8_min_agreement, args.int8_force)  # raises before the file is published
        agree["minimum_top1_agreement"], agree["forced"] = args.int8_min_agreement, args.int8_force
        fast = speed(fp32_path, tmp, args.calibration_dir)
    print(f"int8: {agree} {fast}", flush=True)
    note = (
        "random weights: all inputs land on nearly the same class, so agreement says little about accuracy "
        "on real images; re-check with imagenet weights"
        if source == "random"
        else "agreement measured on the held-out calibration images and their mirror images only"
    )
    return mc.variant_entry(
        int8_path, sha256_file(int8_path), gflops, quantization=settings, agreement=agree, speed=fast, weights_note=note
    )


def exit_code(prog: str, action: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """`action(args)`, with the refusals a user can act on printed as one line and turned into exit codes:
    2 for weights that cannot be had, 4 for an INT8 model below INT8_MIN_AGREEMENT."""
    from quantize_policy import AgreementTooLow

    try:
        return action(args)
    except WeightsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except AgreementTooLow as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 4


def main(argv: list[str] | None = None) -> int:
    return exit_code("convert.py", convert, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
