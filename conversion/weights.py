"""Which weights to convert, and how to get them into keras.applications.ResNet50.

Three sources, always explicit (never a silent fallback):
  imagenet        Keras' own download, cached in $KERAS_HOME/models (default ~/.keras/models)
  random[:SEED]   keras.utils.set_random_seed(SEED) then default initialisers (offline machines, tests, benchmarks)
  <path>          a Keras weights file for ResNet50: *.weights.h5 (model.save_weights) or legacy .h5 (the ImageNet file)
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + IMAGENET_FILE
IMAGENET_MD5 = "2cb95161c43110f7111970584f804107"  # keras.src.applications.resnet.WEIGHTS_HASHES["resnet50"][0]
URL_ENV = "RESNET50_IMAGENET_URL"  # optional mirror of IMAGENET_URL
DEFAULT_TIMEOUT_S = 10.0


class WeightsError(Exception):
    """The requested weights cannot be used; the message says what to do instead."""


@dataclass(frozen=True)
class WeightsSpec:
    request: str  # what the user asked for, verbatim
    source: str  # "imagenet" | "random" | "file"
    seed: int | None = None
    path: Path | None = None  # only for source == "file"


def parse_weights_spec(request: str, seed: int | None = None) -> WeightsSpec:
    """`imagenet`, `random`, `random:SEED` or a path to an existing .h5 file (default seed 0)."""
    text = request.strip()
    if text == "imagenet":
        return WeightsSpec(request, "imagenet")
    if text == "random" or text.startswith("random:"):
        _, _, suffix = text.partition(":")
        try:
            spec_seed = int(suffix) if suffix else None
        except ValueError:
            raise WeightsError(f"bad seed in {request!r}: use random or random:<integer>") from None
        if spec_seed is not None and seed is not None and spec_seed != seed:
            raise WeightsError(f"conflicting seeds: {request!r} and --seed {seed}")
        chosen = spec_seed if spec_seed is not None else (seed if seed is not None else 0)
        if chosen < 0:
            raise WeightsError(f"seed must be >= 0, got {chosen}")
        return WeightsSpec(request, "random", seed=chosen)
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {text!r} (expected imagenet, random[:SEED] or a .h5 path)")
    if not path.name.endswith(".h5"):
        raise WeightsError(f"{text!r} is not a Keras weights file (*.weights.h5 or legacy .h5)")
    return WeightsSpec(request, "file", path=path)


def random_weights_filename(seed: int) -> str:
    return f"resnet50.random-seed{seed}.weights.h5"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def keras_cache_file() -> Path:
    """Where keras.utils.get_file keeps the ImageNet weights (same rule as Keras: $KERAS_HOME or ~/.keras)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / IMAGENET_FILE


def offline_message(reason: str) -> str:
    return (
        f"Cannot get the Keras ImageNet weights for ResNet50 ({reason}).\n"
        "This machine looks offline; nothing was converted. Choose one of:\n"
        f"  --weights /path/to/{IMAGENET_FILE}\n"
        "      a local Keras weights file: the legacy .h5 that Keras downloads, or a *.weights.h5\n"
        "      written by model.save_weights() (or copy the .h5 into "
        f"{keras_cache_file().parent}/)\n"
        "  --weights random   (or random:SEED)\n"
        "      explicitly seeded random weights, same architecture (for offline machines, tests, benchmarks)"
    )


def _probe(url: str, timeout_s: float) -> None:
    """Resolve and connect to the download host within timeout_s (getaddrinfo ignores socket timeouts)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise WeightsError(offline_message(f"no connection to {parts.hostname} within {timeout_s:g} s"))
    if outcome[0] is not None:
        raise WeightsError(offline_message(f"{parts.hostname}: {outcome[0]}"))


def fetch_imagenet_weights(origin: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Path of the cached ImageNet weights, downloading them via Keras if needed; fails fast when offline."""
    origin = origin or os.environ.get(URL_ENV) or IMAGENET_URL
    if not keras_cache_file().is_file():
        _probe(origin, timeout_s)
    import keras  # after the probe: importing TensorFlow alone takes seconds

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # a stalled transfer raises instead of hanging
    try:
        path = keras.utils.get_file(IMAGENET_FILE, origin, cache_subdir="models", file_hash=IMAGENET_MD5)
    except Exception as exc:  # Keras wraps URLError/HTTPError in a bare Exception
        raise WeightsError(offline_message(str(exc))) from exc
    finally:
        socket.setdefaulttimeout(previous)
    return Path(path)
