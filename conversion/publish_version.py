"""`make model`: add version N+1 to the model repository (REPOSITORY/NAME/<version>/), unless the newest version was
already made from these weights (and, with --int8, calibrated on this calibration set).

    .venv-convert/bin/python conversion/publish_version.py --weights random:1 --repository model/repository
    .venv-convert/bin/python conversion/publish_version.py --weights random:1 --int8 --calibration-dir ~/my-photos
    .venv-convert/bin/python conversion/publish_version.py --weights ~/flowers.weights.h5 --labels ~/flowers.txt

The version is built in a temporary folder beside the versions (.tmp-*), then renamed into place: workers never
see half a version, and a published folder is never changed. Files of an older version made from the same weights
are reused (hard links) instead of converting again; only a missing INT8 variant is then quantized (no
TensorFlow). Each version carries its ONNX file(s), the model card and its class index (class_names.py).
Exit codes: those of convert.py (0 ok, 2 bad weights, 3 parity failed, 4 INT8 agreement too low: nothing published).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from resnet_common.repository_layout import published_versions

import convert as convert_cli
from card_status import stale_reason
from class_names import INDEX_NAME, add_labels_option, load_class_index, write_class_index
from model_card import CARD_NAME, FP32_NAME, INT8_NAME, read_card
from weights import WeightsSpec, parse_weights_spec

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REPOSITORY = REPO / "model" / "repository"


def calibration_digest(folder: Path) -> str:
    """sha256 over the calibration folder's image names and contents: the same set gives the same digest."""
    from imageprep import list_images

    digest = hashlib.sha256()
    for path in list_images(folder):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def int8_matches(card: dict, calibration: str | None) -> bool:
    """The card's INT8 variant was calibrated on this set (a card from before digests: on the default photos)."""
    quant = ((card.get("variants") or {}).get("int8") or {}).get("quantization") or {}
    if not quant:
        return False
    recorded = quant.get("calibration_sha256") or default_calibration_digest()
    return recorded == calibration


@functools.cache
def default_calibration_digest() -> str:
    return calibration_digest(convert_cli.DEFAULT_PHOTOS)


def up_to_date(
    folder: Path, spec: WeightsSpec, labels: dict[str, list[str]], int8: bool, calibration: str | None
) -> bool:
    card = read_card(folder)
    if stale_reason(card, spec, folder, need_int8=int8, labels=labels) is not None:
        return False
    return not int8 or int8_matches(card, calibration)


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(src, dest)


def reuse(
    source: Path,
    tmp: Path,
    args: argparse.Namespace,
    spec: WeightsSpec,
    labels: dict[str, list[str]],
    calibration: str | None,
) -> int:
    """Fill `tmp` from an older version made from the same weights and class names; quantize when INT8 is asked
    and not there."""
    import model_card as mc

    card = read_card(source) or {}
    keep_int8 = args.int8 and int8_matches(card, calibration)
    skipped = {CARD_NAME, INDEX_NAME, card.get("labels")} | (set() if keep_int8 else {INT8_NAME})
    for path in source.iterdir():
        if path.is_file() and path.name not in skipped:
            _link_or_copy(path, tmp / path.name)
    card.update(write_class_index(tmp, labels))  # a folder from before class indexes carried none
    variants = {"fp32": card["variants"]["fp32"]}
    if keep_int8:
        variants["int8"] = card["variants"]["int8"]
    elif args.int8:
        gflops = variants["fp32"].get("gflops_per_image", 0.0)
        variants["int8"] = convert_cli.int8_variant(tmp / FP32_NAME, tmp, args, spec.source, gflops)
    card["variants"] = variants
    card["serve"] = args.serve
    mc.write_card(tmp, card)
    return 0


def stamp(tmp: Path, reused_from: Path | None, calibration: str | None) -> None:
    """Record the repository facts in the card (the last write before the folder is renamed into place; the folder's
    name is its version, so the card does not repeat it)."""
    from atomic import atomic_write_json

    card = read_card(tmp)
    assert card is not None
    card["repository"] = {
        "reused_from": reused_from.name
        if reused_from and reused_from.parent == tmp.parent
        else (str(reused_from) if reused_from else None)
    }
    int8 = card.get("variants", {}).get("int8")
    if int8 and calibration and "calibration_sha256" not in int8.get("quantization", {}):
        int8["quantization"]["calibration_sha256"] = calibration
    atomic_write_json(tmp / CARD_NAME, card)


def publish(tmp: Path, root: Path) -> int:
    """Rename `tmp` to the next free version number (another `make model` may have taken one meanwhile)."""
    for _ in range(100):
        version = (published_versions(root) or [0])[-1] + 1
        try:
            os.rename(tmp, root / str(version))
            return version
        except OSError:
            if not (root / str(version)).exists():
                raise
            time.sleep(0.05)
    raise RuntimeError(f"could not find a free version number in {root}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="imagenet", help="imagenet | random | random:SEED | <path> (as convert.py)")
    p.add_argument("--repository", type=Path, default=Path(os.environ.get("MODEL_REPOSITORY") or DEFAULT_REPOSITORY))
    p.add_argument("--name", default=os.environ.get("MODEL_NAME") or "resnet50")
    p.add_argument("--int8", action="store_true", help="also build (or keep) the INT8 variant")
    add_labels_option(p)
    p.add_argument("--calibration-dir", type=Path, default=convert_cli.DEFAULT_PHOTOS)
    p.add_argument("--serve", choices=["fp32", "int8"], default="fp32")
    p.add_argument("--int8-min-agreement", type=float, default=None)
    p.add_argument("--int8-force", action="store_true", default=os.environ.get("INT8_FORCE", "0") == "1")
    p.add_argument("--reduce-range", action="store_true")
    p.add_argument(
        "--reuse-from",
        action="append",
        help="another model folder whose files may be reused when made from the same weights (a flat MODEL_DIR "
        "such as model/artifacts). Repeatable; given, it replaces MODEL_REUSE_FROM (colon-separated folders)",
    )
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--photos", type=Path, default=convert_cli.DEFAULT_PHOTOS)
    args = p.parse_args(argv)
    if args.reuse_from is None:  # an explicit --reuse-from replaces the environment's list, never adds to it
        args.reuse_from = [f for f in os.environ.get("MODEL_REUSE_FROM", "").split(":") if f]
    if args.int8_min_agreement is None:
        from quantize_policy import DEFAULT_MIN_AGREEMENT

        args.int8_min_agreement = float(os.environ.get("INT8_MIN_AGREEMENT") or DEFAULT_MIN_AGREEMENT)
    if args.serve == "int8" and not args.int8:
        p.error("--serve int8 needs --int8")
    args.seed = None
    return args


def run(args: argparse.Namespace) -> int:
    spec = parse_weights_spec(args.weights)
    labels = load_class_index(args.labels)
    root = args.repository.resolve() / args.name
    root.mkdir(parents=True, exist_ok=True)
    calibration = calibration_digest(args.calibration_dir) if args.int8 else None
    existing = published_versions(root)
    if existing and up_to_date(root / str(existing[-1]), spec, labels, args.int8, calibration):
        print(f"publish_version: version {existing[-1]} in {root} is already made from WEIGHTS={args.weights}")
        return 0
    candidates = [root / str(v) for v in reversed(existing)] + [Path(p) for p in args.reuse_from]
    source = next((f for f in candidates if f.is_dir() and up_to_date(f, spec, labels, False, None)), None)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        if source is not None:
            print(f"publish_version: reusing the files of {source} (same weights)", flush=True)
            code = reuse(source, tmp, args, spec, labels, calibration)
        else:
            code = convert_cli.convert(argparse.Namespace(**{**vars(args), "out_dir": tmp}))
        if code != 0:
            return code
        stamp(tmp, source, calibration)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700: containers' non-root users must read it
        version = publish(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"publish_version: published {root / str(version)} (WEIGHTS={args.weights}{' +int8' if args.int8 else ''})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return convert_cli.exit_code("publish_version", run, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
