"""Build keras.applications.ResNet50 with the requested weights (TensorFlow is imported only here and below)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atomic import atomic_path
from make_class_index import NUM_CLASSES  # the head the service serves: model/imagenet_class_index.json
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


def resnet50_logits(weights: str | Path | None = None) -> Any:
    """ResNet50 without the final softmax, so the ONNX graph can expose logits and probabilities."""
    import keras

    model = keras.applications.ResNet50(weights=None, classifier_activation=None)
    if weights is not None:
        try:
            model.load_weights(str(weights))
        except Exception as exc:  # wrong architecture, corrupt file, wrong format…
            classes = head_classes(weights)
            if classes is not None and classes != NUM_CLASSES:
                raise WeightsError(
                    f"{weights} has a {classes}-class head; this service serves ResNet50 with its "
                    f"{NUM_CLASSES} ImageNet classes (model/imagenet_class_index.json): keep that head when "
                    "fine-tuning"
                ) from exc
            raise WeightsError(f"{weights} is not a Keras ResNet50 weights file: {exc}") from exc
    return model


def resnet50_reference(weights: str | Path) -> Any:
    """Keras' own ResNet50 (softmax head) from the same file: the reference the service must match."""
    import keras

    return keras.applications.ResNet50(weights=str(weights))


def load_model(spec: WeightsSpec, out_dir: Path) -> LoadedModel:
    """Model plus the weights file it stands for; random weights are saved to out_dir for later Keras checks."""
    if spec.source == "imagenet":
        path = fetch_imagenet_weights()
        return LoadedModel(resnet50_logits(path), path, sha256_file(path))
    if spec.source == "file":
        assert spec.path is not None
        return LoadedModel(resnet50_logits(spec.path), spec.path, sha256_file(spec.path))
    import keras

    assert spec.seed is not None
    keras.utils.set_random_seed(spec.seed)
    model = resnet50_logits(None)
    dest = out_dir / random_weights_filename(spec.seed)
    with atomic_path(dest, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    return LoadedModel(model, dest, sha256_file(dest))
