"""Fixtures: a real redis-server on a free port, the converted model (or a tiny stand-in), job helpers."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

MODEL_SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, MODEL_SRC)
PHOTOS = os.path.join(MODEL_SRC, "..", "tests", "data", "photos")
REAL_MODEL_DIR = os.environ.get("MODEL_DIR") or os.path.join(MODEL_SRC, "artifacts")
REAL_LABELS = os.path.join(MODEL_SRC, "imagenet_class_index.json")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

import redis  # noqa: E402

import constants as C  # noqa: E402
import settings  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server process in a temp dir, without persistence, that a test may stop and start again."""

    def __init__(self, port: int, workdir: str) -> None:
        self.port, self.workdir, self.proc = port, workdir, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.workdir,
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=30)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(free_port(), str(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_factory(tmp_path):
    """Fresh servers a test owns (e.g. to restart one)."""
    servers = []

    def make() -> RedisServer:
        server = RedisServer(free_port(), str(tmp_path))
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def r(redis_server):
    client = redis_server.client()
    client.flushdb()
    yield client
    client.flushdb()


def _tiny_model(path: str) -> None:
    """A 3×1000 linear layer on the per-channel mean: same input/output names as the real graph, ~12 KB."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array((rng.standard_normal((3, 1000)) * 0.05).astype(np.float32), "W")
    axes = numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input", "axes"], ["mean"], keepdims=0),
         helper.make_node("MatMul", ["mean", "W"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 1000])],
        initializer=[weights, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def write_card(model_dir: str, file: str, model: str) -> None:
    card = {"model": model, "serve": "fp32",
            "variants": {"fp32": {"file": file, "bytes": os.path.getsize(os.path.join(model_dir, file))}},
            "input": {"name": "input", "layout": "NHWC", "shape": [None, 224, 224, 3], "dtype": "float32"},
            "outputs": ["logits", "probabilities"], "labels": "imagenet_class_index.json"}
    with open(os.path.join(model_dir, "model_card.json"), "w", encoding="utf-8") as fh:
        json.dump(card, fh)


def has_real_model() -> bool:
    return os.path.exists(os.path.join(REAL_MODEL_DIR, "model_card.json"))


@pytest.fixture(scope="session")
def labels_file(tmp_path_factory) -> str:
    """The shipped Keras class index, or (until the conversion step has generated it) a stand-in."""
    if os.path.exists(REAL_LABELS):
        return REAL_LABELS
    path = tmp_path_factory.mktemp("labels") / "imagenet_class_index.json"
    path.write_text(json.dumps({str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}))
    return str(path)


@pytest.fixture(scope="session")
def real_model_dir() -> str:
    if not has_real_model():
        pytest.skip(f"no converted model in {REAL_MODEL_DIR}: run `make model` (make test converts first)")
    return REAL_MODEL_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    pytest.importorskip("onnx", reason="onnx builds the tiny stand-in model")
    model_dir = str(tmp_path_factory.mktemp("tiny-model"))
    _tiny_model(os.path.join(model_dir, "tiny.onnx"))
    write_card(model_dir, "tiny.onnx", "Tiny")
    return model_dir


@pytest.fixture(scope="session")
def fast_model_dir(tmp_path_factory, request) -> str:
    """For queue behaviour: the tiny model when onnx is installed (fast), else the real one."""
    try:
        import onnx  # noqa: F401
        return request.getfixturevalue("tiny_model_dir")
    except ImportError:
        return request.getfixturevalue("real_model_dir")


@pytest.fixture
def make_cfg(redis_server, labels_file, fast_model_dir):
    """settings.load() with test defaults: short claim/idle times, this test's Redis and model."""
    def make(**overrides) -> settings.Settings:
        base = dict(REDIS_HOST="127.0.0.1", REDIS_PORT=redis_server.port, MODEL_DIR=fast_model_dir,
                    LABELS_FILE=labels_file, THREADS=1, WORKERS=1, BATCH_SIZE=8, CLAIM_IDLE_MS=5000,
                    CLAIM_INTERVAL_S=0.05, HEARTBEAT_INTERVAL_S=0.1, METRICS_PUSH_INTERVAL_S=0,
                    SUMMARY_INTERVAL_S=3600)
        base.update(overrides)
        return settings.load(**base)
    return make


def photo(name: str = "cat.jpg") -> bytes:
    with open(os.path.join(PHOTOS, name), "rb") as fh:
        return fh.read()


def enqueue(client: redis.Redis, image: bytes, top_k: int = 5, ttl_s: float = 30.0,
            job_id: str | None = None, **extra) -> str:
    """XADD a job exactly as the API does (docs/queue-protocol.md); returns its id."""
    job_id = job_id or uuid.uuid4().hex
    now = time.time()
    fields = {"id": job_id, "image": image, "filename": f"{job_id}.jpg", "enqueued": repr(now),
              "deadline": repr(now + ttl_s), "top_k": str(top_k), **extra}
    client.xadd(C.JOB_STREAM, fields)
    return job_id


def result(client: redis.Redis, job_id: str, timeout: float = 10) -> dict | None:
    reply = client.blpop([C.result_key(job_id)], timeout=timeout)
    return json.loads(reply[1]) if reply else None


def subprocess_env(cfg_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in settings.Settings.__dataclass_fields__}
    env.update({k: str(v) for k, v in cfg_env.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env
