"""Raw figures (no HTTP) on the runtime a stack's workers use: the baseline a stack with RUNTIME=<name> is held to.

ONNX Runtime through ort_runner, OpenVINO through openvino_runner (the worker's own session); the same measurement
either way, each row naming the runtime and its version.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from resnet_common.protocol import Runtime
from stress_test import openvino_runner, ort_runner


def run(runtime: str, cfg: ort_runner.Config) -> dict[str, Any]:
    """ort_runner.run's figures for `cfg` on `runtime` (a protocol.Runtime), with "runtime": "<name> <version>"."""
    if runtime == Runtime.OPENVINO:
        return openvino_runner.run(cfg)
    if runtime == Runtime.ONNXRUNTIME:
        return {**ort_runner.run(cfg), "runtime": f"onnxruntime {importlib.metadata.version('onnxruntime')}"}
    raise ValueError(f"no raw runner for RUNTIME={runtime!r}")
