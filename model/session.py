"""ONNX Runtime session for the served model variant, with thread options sized for the cores present.

Create it inside the worker process that uses it (never before a fork): ORT thread pools do not survive one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import cpu_quota
from resnet_common.protocol import DEFAULT_RUNTIME, Runtime
from resnet_common.repository_layout import CARD_NAME, version_number
from settings import Settings

log = logging.getLogger(__name__)
PREFERRED_OUTPUT = "probabilities"


def available_cores() -> int:
    """Cores this process may use: CPU affinity, capped by a container's CPU quota (cgroup v1 or v2)."""
    try:
        visible = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        visible = os.cpu_count() or 1
    return cpu_quota.quota_cores(visible)


def default_topology(cores: int) -> tuple[int, int]:
    """(processes, intra-op threads per process) for throughput: one single-threaded process per core.

    End to end this saturates highest, while one process with every core as a thread answers a lone request
    fastest (figures: see hardware_report.md). Set WORKERS=1 THREADS=<cores> to favour latency instead.
    threads × processes never exceeds cores.
    """
    return max(1, cores), 1


def resolve_topology(cfg: Settings, cores: int | None = None) -> tuple[int, int]:
    """WORKERS / THREADS from the settings; whichever is 0 (unset) is derived so the product fits the cores."""
    cores = cores or available_cores()
    workers, threads = cfg.WORKERS, cfg.THREADS
    if workers <= 0 and threads <= 0:
        return default_topology(cores)
    if workers <= 0:
        workers = max(1, cores // threads)
    if threads <= 0:
        threads = max(1, cores // workers)
    return workers, threads


def spinning(cfg: Settings, workers: int) -> bool:
    """Busy-wait in the intra-op pool only when this process has its cores to itself (ORT_SPIN=auto)."""
    if cfg.ORT_SPIN in ("0", "1"):
        return cfg.ORT_SPIN == "1"
    return workers <= 1


def read_card(model_dir: str) -> dict:
    path = os.path.join(model_dir, CARD_NAME)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"no model card at {path}: convert the model first (make model)") from None


@dataclasses.dataclass
class ModelHandle:
    """A loaded session and what the classifier needs to know about it."""

    session: object
    input_name: str
    output_name: str
    apply_softmax: bool
    model: str
    variant: str
    path: str
    threads: int
    runtime: Runtime = DEFAULT_RUNTIME  # RUNTIME it was opened with
    sha256: str = ""  # of the ONNX file: part of every response-cache key, so a new model never serves old answers
    version: str = ""  # the repository version folder it came from ("" for a MODEL_DIR outside a repository)
    folder: str = ""
    labels_file: str = ""  # the class index the folder carries (the card's `labels`); "": none, use LABELS_FILE


def open_session(
    path: str,
    threads: int,
    spin: bool,
    runtime: str = DEFAULT_RUNTIME,
    mem_pattern: bool = bool(Settings.ORT_MEM_PATTERN),  # the workers' default, so raw and peers run alike
):
    """A CPU session with fixed intra-op threads, one inter-op thread and full graph optimisation (the benchmark
    opens its sessions through this too, so it measures exactly what the worker runs). RUNTIME=openvino: an
    OpenVINO compiled model of the same file behind the same calls (openvino_session).

    `mem_pattern` False (ORT_MEM_PATTERN=0, the default): ONNX Runtime places each run's tensors as it goes instead
    of keeping a plan per input shape; a worker's batches come in every size up to BATCH_SIZE, and it would keep
    one for each size it met, for no speed."""
    if runtime not in tuple(Runtime):
        raise ValueError(f"RUNTIME={runtime!r} is not one of {[r.value for r in Runtime]}")
    if runtime == Runtime.OPENVINO:
        import openvino_session

        return openvino_session.open_compiled(path, threads)  # spinning is ONNX Runtime's alone
    import onnxruntime as ort  # imported here so the supervisor process never loads it

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_mem_pattern = mem_pattern
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def version_of(model_dir: str) -> str:
    """A repository version folder is named by its number (<repository>/<name>/<version>); any other folder: ""."""
    base = os.path.basename(os.path.normpath(model_dir))
    return base if version_number(base) is not None else ""


def create_session(cfg: Settings, threads: int, spin: bool, model_dir: str | None = None) -> ModelHandle:
    """Load the variant named by MODEL_VARIANT, or the card's "serve", from `model_dir` (default MODEL_DIR)."""
    model_dir = model_dir or cfg.MODEL_DIR
    if not model_dir:
        raise FileNotFoundError("no model folder given: set MODEL_DIR or serve from MODEL_REPOSITORY (make model)")
    card = read_card(model_dir)
    variant = cfg.MODEL_VARIANT or card.get("serve", "fp32")
    variants = card.get("variants", {})
    if variant not in variants:
        raise ValueError(f"model variant {variant!r} not in the model card (has {sorted(variants)})")
    path = os.path.join(model_dir, variants[variant]["file"])
    expected = variants[variant].get("bytes")
    if expected and os.path.getsize(path) != expected:
        raise ValueError(f"{path} has {os.path.getsize(path)} bytes, the model card says {expected}")

    session = open_session(path, threads, spin, cfg.RUNTIME, bool(cfg.ORT_MEM_PATTERN))
    sha256 = variants[variant].get("sha256") or _sha256_file(path)

    outputs = [o.name for o in session.get_outputs()]
    output = PREFERRED_OUTPUT if PREFERRED_OUTPUT in outputs else outputs[0]
    log.info(
        "loaded %s (%s) from %s on %s: %d intra-op threads, spinning %s",
        card.get("model", "?"),
        variant,
        path,
        cfg.RUNTIME,
        threads,
        "on" if spin else "off",
    )
    return ModelHandle(
        session=session,
        input_name=session.get_inputs()[0].name,
        output_name=output,
        apply_softmax=output == "logits",
        model=card.get("model", "?"),
        variant=variant,
        path=path,
        threads=threads,
        runtime=cfg.RUNTIME,
        sha256=sha256,
        version=version_of(model_dir),
        folder=model_dir,
        labels_file=own_file(model_dir, card.get("labels")),
    )


def own_file(model_dir: str, name: object) -> str:
    """The path of a file the card names inside its folder, or "" when it names none or the file is not there."""
    path = os.path.join(model_dir, name) if isinstance(name, str) and name else ""
    return path if path and os.path.isfile(path) else ""


def _sha256_file(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
