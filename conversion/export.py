"""Keras ResNet50 (logits) -> ONNX with tf2onnx: outputs `logits`, `probabilities` and `features`.

tf2onnx.convert.from_keras does not understand Keras 3 models, so the model is wrapped in a tf.function
with a named input signature and converted with from_function; the dict keys become the output names.

`features` is Keras' `conv5_block3_out` (the last convolution block, input of the global average pooling) in
NCHW, [N, 2048, 7, 7]: the layout the converted graph computes it in, so the output is an existing tensor of the
graph and costs nothing when a run does not fetch it (ONNX Runtime runs every node whatever the fetches: an
NHWC output would add a Transpose to every run). The worker's class activation map (resnet_common.cam) reads it.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from atomic import atomic_path

INPUT_NAME = "input"
OUTPUT_NAMES = ("logits", "probabilities", "features")
FEATURE_LAYER = "conv5_block3_out"  # Keras layer whose output is exported as `features`
FEATURE_OUTPUT = "features"
FEATURE_LAYOUT = "NCHW"
DEFAULT_OPSET = 17
CLASS_NAMES_KEY = "class_names"  # ONNX metadata_props: the head's class names, JSON, in output order


def _collect_between_optimizers() -> None:
    """tf2onnx deep-copies the whole graph (~100 MB of weights) before each of its ONNX optimizers and the
    copies form reference cycles, so they pile up until the cyclic GC happens to run: peak RSS ~7 GB.
    Collecting before each optimizer keeps the peak under 3 GB and is also ~2x faster. Idempotent."""
    import tf2onnx.optimizer as optimizers

    def collecting(factory: Any) -> Any:
        def make() -> Any:
            gc.collect()
            return factory()

        make.collects = True  # type: ignore[attr-defined]
        return make

    for name, factory in list(optimizers._optimizers.items()):
        if not getattr(factory, "collects", False):
            optimizers._optimizers[name] = collecting(factory)


def to_onnx(model: Any, opset: int = DEFAULT_OPSET) -> Any:
    """ONNX ModelProto: float32 NHWC input `input` [N,224,224,3]; outputs logits, softmax probabilities and the
    conv5_block3_out feature map (NCHW)."""
    import keras
    import tensorflow as tf
    import tf2onnx

    _collect_between_optimizers()
    signature = [tf.TensorSpec([None, 224, 224, 3], tf.float32, name=INPUT_NAME)]

    with_features = keras.Model(model.inputs, [model.output, model.get_layer(FEATURE_LAYER).output])

    @tf.function(input_signature=signature)
    def resnet50(x: Any) -> dict[str, Any]:
        logits, features = with_features(x, training=False)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            FEATURE_OUTPUT: tf.transpose(features, [0, 3, 1, 2]),
        }  # cancels tf2onnx's own NCHW transpose

    proto, _ = tf2onnx.convert.from_function(resnet50, input_signature=signature, opset=opset)
    proto.graph.doc_string = "keras.applications.ResNet50 converted by conversion/convert.py"  # deterministic bytes
    ordered = sorted(proto.graph.output, key=lambda o: OUTPUT_NAMES.index(o.name) if o.name in OUTPUT_NAMES else 99)
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)  # logits, probabilities, features: session.get_outputs() order
    got_in = [i.name for i in proto.graph.input]
    got_out = [o.name for o in proto.graph.output]
    if got_in != [INPUT_NAME] or got_out != list(OUTPUT_NAMES):
        raise RuntimeError(f"unexpected ONNX signature: inputs {got_in}, outputs {got_out}")
    gc.collect()
    return proto


def name_classes(proto: Any, names: list[str]) -> None:
    """Write the head's class names into the model's metadata (ONNX Runtime: get_modelmeta().custom_metadata_map).
    The file then says what its outputs mean, and two versions that differ only in their names are two files of two
    sha256s: the response cache, keyed by the model's sha256, never answers one's request with the other's names."""
    import json

    import onnx

    onnx.helper.set_model_props(proto, {CLASS_NAMES_KEY: json.dumps(names, ensure_ascii=False)})


def class_names_of(path: Path) -> list[str] | None:
    """The class names an ONNX file's metadata carries (name_classes), None when it carries none."""
    import json

    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props[CLASS_NAMES_KEY]) if CLASS_NAMES_KEY in props else None


def save_onnx(proto: Any, dest: Path) -> None:
    import onnx

    with atomic_path(dest, suffix=".onnx") as tmp:
        onnx.save(proto, str(tmp))
