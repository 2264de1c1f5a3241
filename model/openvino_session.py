"""OpenVINO on the same ONNX file, behind the few calls of an ONNX Runtime session the worker makes.

RUNTIME=openvino. The settings mirror session.open_session's: a fixed number of inference threads, one stream,
f32 precision (no bf16 or fp16 downcast: the answers stay those of the ONNX file), and no thread pinning, since
one process per core shares the cores as ONNX Runtime's non-spinning pools do. The model keeps the ONNX file's
dynamic batch dimension: the worker's batches vary in size, and one compiled model serves them all (a static model
per size would hold the weights once per size). ONNX Runtime's spinning (ORT_SPIN) has no OpenVINO counterpart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Port:
    """What the worker reads of an ONNX Runtime NodeArg: the name, and the shape (None for a dynamic dimension)."""

    name: str
    shape: tuple[int | None, ...]

    @classmethod
    def of(cls, port: Any) -> Port:
        dims = port.get_partial_shape()
        return cls(port.get_any_name(), tuple(d.get_length() if d.is_static else None for d in dims))


class CompiledSession:
    """An OpenVINO compiled model behind ONNX Runtime's get_inputs / get_outputs / run(names, feed)."""

    def __init__(self, compiled: Any) -> None:
        self.request = compiled.create_infer_request()
        self.inputs = [Port.of(p) for p in compiled.inputs]
        self.outputs = [Port.of(p) for p in compiled.outputs]
        self._index = {port.name: i for i, port in enumerate(self.outputs)}  # the results come in this order

    def get_inputs(self) -> list[Port]:
        return self.inputs

    def get_outputs(self) -> list[Port]:
        return self.outputs

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The named outputs, each copied out of the request's buffers (the next run reuses them; the outputs not
        asked for, the feature map most of the time, are not copied). The input is read in place: the call is
        synchronous, so the caller cannot reuse its array before the run ends."""
        result = self.request.infer(feed, share_inputs=True, share_outputs=True)
        return [np.array(result[self._index[n]]) for n in names]


def open_compiled(path: str, threads: int) -> CompiledSession:
    """Compile the ONNX file for the CPU with `threads` inference threads."""
    import openvino as ov  # imported here: only a worker that runs it loads it

    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
        "ENABLE_CPU_PINNING": False,
    }
    return CompiledSession(core.compile_model(core.read_model(path), "CPU", config))


def version() -> str | None:
    """OpenVINO's version, or None when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split("-")[0]
