"""Build keras.applications.ResNet50 with the requested weights (TensorFlow is imported only here and below)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atomic import atomic_path
from make_class_index import NUM_CLASSES  # ImageNet's head: model/imagenet_class_index.json
from weights import WeightsError, WeightsSpec, fetch_imagenet_weights, random_weights_filename, sha256_file

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class LoadedModel:
    model: Any  # keras Model: ResNet50 ending in the Dense layer, no softmax (logits)
    weights_path: Path  # the Keras weights file the model was loaded from (or saved to, for random)
    weights_sha256: str


FEATURES = 2048  # ResNet50's pooled features: the classifier's kernel is FEATURES x classes


def head_classes(weights: str | Path) -> int | None:
    """How many classes the classifier in a weights file has (either Keras format), None when it has none: in
    ResNet50 the only 2-D weight is the Dense kernel, FEATURES x classes (every other one is a 4-D convolution
    kernel or a 1-D vector)."""
    import h5py

    kernels: list[tuple[int, ...]] = []

    def visit(_name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset) and item.ndim == 2 and item.shape[0] == FEATURES:
            kernels.append(item.shape)

    try:
        with h5py.File(weights, "r") as fh:
            fh.visititems(visit)
    except OSError:
        return None
    return kernels[0][1] if len(kernels) == 1 else None


def resnet50_logits(weights: str | Path | None = None, classes: int = NUM_CLASSES) -> Any:
    """ResNet50 without the final softmax, so the ONNX graph can expose logits and probabilities; a weights file
    brings its own head (head_classes), random weights get `classes`."""
    import keras

    if weights is not None:
        classes = head_classes(weights) or NUM_CLASSES
    model = keras.applications.ResNet50(weights=None, classes=classes, classifier_activation=None)
    if weights is not None:
        try:
            model.load_weights(str(weights))
        except Exception as exc:  # wrong architecture, corrupt file, wrong format…
            raise WeightsError(f"{weights} is not a Keras ResNet50 weights file: {exc}") from exc
    return model


def resnet50_reference(weights: str | Path) -> Any:
    """Keras' own ResNet50 (softmax head) from the same file: the reference the service must match."""
    import keras

    return keras.applications.ResNet50(weights=str(weights), classes=head_classes(weights) or NUM_CLASSES)


def require_head(spec: WeightsSpec, classes: int, labels: str | Path | None) -> None:
    """Refuse, before TensorFlow is imported, weights whose head does not have one output per class of the class
    index: `classes` names from the LABELS file `labels`, or ImageNet's when it is None."""
    head = NUM_CLASSES if spec.source == "imagenet" else head_classes(spec.path) if spec.path else None
    if head is None or head == classes:
        return
    named = (
        f"LABELS={labels} names {classes} classes"
        if labels
        else f"without LABELS it answers {classes} ImageNet classes"
    )
    hint = "one name per class, in the head's output order" if labels else "name them with LABELS=<file>, one per line"
    weights = "ImageNet's weights have" if spec.source == "imagenet" else f"{spec.path} has"
    raise WeightsError(f"{weights} a {head}-class head; {named}: {hint}")


def load_model(spec: WeightsSpec, out_dir: Path, classes: int = NUM_CLASSES) -> LoadedModel:
    """Model plus the weights file it stands for; random weights (a head of `classes`) are saved to out_dir for
    later Keras checks. Check the head first (require_head)."""
    if spec.source == "imagenet":
        path = fetch_imagenet_weights()
        return LoadedModel(resnet50_logits(path), path, sha256_file(path))
    if spec.source == "file":
        assert spec.path is not None
        return LoadedModel(resnet50_logits(spec.path), spec.path, sha256_file(spec.path))
    import keras

    assert spec.seed is not None
    keras.utils.set_random_seed(spec.seed)
    model = resnet50_logits(None, classes)
    dest = out_dir / random_weights_filename(spec.seed)
    with atomic_path(dest, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    return LoadedModel(model, dest, sha256_file(dest))
