"""What the Open Inference Protocol says about the served model: its metadata and Triton config, given the versions,
runtimes and class counts that fleet.ready_models() reads from the workers' heartbeats."""

from __future__ import annotations

import settings
from resnet_common.protocol import DEFAULT_RUNTIME

PLATFORM, BACKEND = "onnxruntime_onnx", DEFAULT_RUNTIME  # BACKEND: named while no worker is ready
IMAGE_SIZE, CHANNELS, HEATMAP_SIZE = 224, 3, 7
VARIABLE = -1  # a dimension not known in advance: the batch, or the classes while versions of different heads serve

# name → (datatype, shape of one item): the batch dimension comes first, -1 in metadata. One `image` item is one
# encoded file: requests may shape a batch [N] or [N, 1]; metadata says [-1, 1], as Triton does for a batched input of
# dims [1] reshaped to a scalar (perf_analyzer needs a non-empty shape past the batch dimension).
INPUTS = {"image": ("BYTES", ()), "input": ("FP32", (IMAGE_SIZE, IMAGE_SIZE, CHANNELS))}
OUTPUTS = {"probabilities": "FP32", "heatmap": "FP32"}  # shapes: output_shapes(), the classes are the version's
TRITON_TYPES = {"BYTES": "TYPE_STRING", "FP32": "TYPE_FP32"}


def output_shapes(classes: int | None) -> dict[str, tuple[int, ...]]:
    """The shape of one item of each output: `classes` probabilities (VARIABLE when not known: None)."""
    return {"probabilities": (classes or VARIABLE,), "heatmap": (HEATMAP_SIZE, HEATMAP_SIZE)}


def metadata(versions: tuple[str, ...], classes: int | None) -> dict:
    """Model metadata (KServe V2 `$metadata_model_response`) of `versions` that answer `classes` classes."""
    shapes = output_shapes(classes)
    return {
        "name": settings.MODEL_NAME,
        "versions": list(versions),
        "platform": PLATFORM,
        "inputs": [
            {"name": n, "datatype": t, "shape": [VARIABLE, *(shape or (1,))]} for n, (t, shape) in INPUTS.items()
        ],
        "outputs": [{"name": n, "datatype": t, "shape": [VARIABLE, *shapes[n]]} for n, t in OUTPUTS.items()],
    }


def config(runtimes: list[str] | None = None, classes: int | None = None) -> dict:
    """Triton's model configuration, as its `/config` route returns it (what perf_analyzer reads): dims without
    the batch dimension; `image` is one encoded file per batch item (dims [1], reshaped to a scalar); each input
    is optional because a request carries exactly one of them. `backend` names the runtimes that serve it
    (fleet.ready_models), comma-separated while a fleet runs both; `probabilities` has `classes` dims."""
    inputs = []
    for name, (datatype, shape) in INPUTS.items():
        entry = {"name": name, "data_type": TRITON_TYPES[datatype], "dims": list(shape) or [1], "optional": True}
        if not shape:
            entry["reshape"] = {"shape": []}
        if datatype == "FP32":
            entry["format"] = "FORMAT_NHWC"
        inputs.append(entry)
    shapes = output_shapes(classes)
    outputs = [{"name": n, "data_type": TRITON_TYPES[t], "dims": list(shapes[n])} for n, t in OUTPUTS.items()]
    return {
        "name": settings.MODEL_NAME,
        "platform": PLATFORM,
        "backend": ",".join(runtimes or [BACKEND]),
        "max_batch_size": settings.V2_MAX_BATCH,
        "input": inputs,
        "output": outputs,
        "dynamic_batching": {},  # the workers batch jobs of all requests together (BATCH_SIZE, BATCH_WAIT_MS)
    }
