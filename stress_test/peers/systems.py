"""The systems measured side by side: this service as `make run` starts it, and each peer as its own CLI starts it.

Every peer runs from its own virtual environment (.venv-peer-<name>, scripts/peer_envs.sh) with the repository
root and model/ on PYTHONPATH (so the service files import the shared model code without path edits), MODEL_DIR
naming the served model, and a session of its own so that stopping it stops all its processes.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_common.protocol import DEFAULT_RUNTIME, Runtime
from stress_test.peers.load import Target
from testkit.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent
STOP_TIMEOUT_S = 40
OURS_RUNTIME = {"ours": DEFAULT_RUNTIME, "ours_openvino": Runtime.OPENVINO}  # this service's entries, by runtime
PEERS_RUNTIME = Runtime.ONNXRUNTIME  # what every peer's service runs the ONNX file on


def multipart(field: str) -> Any:
    """An encoder sending the image as one file of a multipart/form-data form, in `field`."""

    def encode(name: str, data: bytes) -> tuple[bytes, str]:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"

    return encode


def raw_body(name: str, data: bytes) -> tuple[bytes, str]:
    return data, "application/octet-stream"


def open_inference_v2(name: str, data: bytes) -> tuple[bytes, str]:
    """Open Inference Protocol V2 (REST): one BYTES input holding the file, base64 as the protocol's JSON needs."""
    tensor = {"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(data).decode()]}
    body = {"inputs": [{**tensor, "parameters": {"content_type": "base64"}}]}
    return json.dumps(body).encode(), "application/json"


def accept_json(check: Any) -> Any:
    def accept(status: int, body: bytes) -> bool:
        if status != 200:
            return False
        try:
            return bool(check(json.loads(body)))
        except ValueError:
            return False

    return accept


def _ours_ok(r: Any) -> bool:
    return r.get("success") is True


def _bentoml_ok(r: Any) -> bool:
    return isinstance(r, list) and len(r) == 1 and "class" in r[0]


def _ray_ok(r: Any) -> bool:
    return "class" in r


def _v2_ok(r: Any) -> bool:
    return r["outputs"][0]["name"] == "class" and len(r["outputs"][0]["data"]) == 1


@dataclass
class Peer:
    """A peer started by its own CLI as a child process (its own session), stopped by signalling that session."""

    name: str
    request: str  # how the image travels, for the report
    path: str
    encode: Any
    accept: Any
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def venv(self) -> Path:
        return ROOT / f".venv-peer-{self.name}"

    def version(self) -> str:
        dist = {"ray": "ray", "bentoml": "bentoml", "mlserver": "mlserver"}[self.name]
        out = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", f"import importlib.metadata as m; print(m.version('{dist}'))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout.strip() or "?"

    def command(self, port: int, tmp: Path) -> tuple[list[str], dict[str, str], Path]:
        """argv, extra environment and working directory of the peer's own way of starting."""
        bin_ = self.venv / "bin"
        if self.name == "bentoml":
            module = "stress_test.peers.bentoml_service:Classifier"
            argv = [str(bin_ / "bentoml"), "serve", module, "--host", "127.0.0.1", "--port", str(port)]
            return argv, {"BENTOML_DO_NOT_TRACK": "true"}, ROOT
        if self.name == "ray":
            config = tmp / "ray-serve.yaml"
            config.write_text(ray_config(port))
            env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # 0: loopback only
            return [str(bin_ / "serve"), "run", str(config)], env, ROOT
        ports = {"MLSERVER_HTTP_PORT": str(port), "MLSERVER_GRPC_PORT": str(free_port())}
        ports["MLSERVER_METRICS_PORT"] = str(free_port())
        return [str(bin_ / "mlserver"), "start", str(PEERS / "mlserver_model")], ports, ROOT

    def start(self, tmp: Path, model_dir: Path, photo: bytes, timeout: float) -> Target:
        if not (self.venv / "bin" / "python").exists():
            raise RuntimeError(f"{self.venv} does not exist: run scripts/peer_envs.sh {self.name}")
        port = free_port()
        argv, extra, cwd = self.command(port, tmp)
        env = {**os.environ, **extra, "MODEL_DIR": str(model_dir), "PYTHONPATH": f"{ROOT}:{ROOT / 'model'}"}
        self.log = tmp / f"{self.name}.log"
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        target = Target(port, self.path, self.encode, self.accept)
        wait_answering(target, photo, timeout, self.proc, self.log)
        return target

    @property
    def session(self) -> int:
        """The session id of the peer's processes (its CLI leads a session of its own)."""
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_session(self.proc, signal.SIGINT)


def ray_config(port: int) -> str:
    """`serve run` config: the documented place for the HTTP host and port of the proxy."""
    return (
        "proxy_location: HeadOnly\n"
        f"http_options:\n  host: 127.0.0.1\n  port: {port}\n"
        "applications:\n  - name: classifier\n    route_prefix: /\n"
        "    import_path: stress_test.peers.ray_service:app\n"
    )


def stop_session(proc: subprocess.Popen, sig: int) -> None:
    """Signal the child's whole session (it and everything it started), then kill what is left after a while."""
    try:
        os.killpg(proc.pid, sig)
        proc.wait(STOP_TIMEOUT_S)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(5)


def wait_answering(target: Target, photo: bytes, timeout: float, proc: Any = None, log: Path | None = None) -> None:
    """Send one real image until it is answered well (startup includes loading the model in every replica)."""
    import http.client

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"exited with code {proc.returncode} while starting:\n{tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
            body, ctype = target.encode("probe.jpg", photo)
            conn.request("POST", target.path, body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            if target.accept(resp.status, payload):
                return
            last = f"HTTP {resp.status}: {payload[:300]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(1.0)
    tail = log.read_text(errors="replace")[-2000:] if log else ""
    raise RuntimeError(f"no good answer within {timeout:.0f}s (last: {last})\n{tail}")


PEER_SYSTEMS = {
    "bentoml": lambda: Peer(
        "bentoml", "multipart/form-data, field images", "/predict", multipart("images"), accept_json(_bentoml_ok)
    ),
    "ray": lambda: Peer("ray", "raw body (application/octet-stream)", "/", raw_body, accept_json(_ray_ok)),
    "mlserver": lambda: Peer(
        "mlserver",
        "Open Inference Protocol V2 JSON, BYTES tensor in base64",
        "/v2/models/resnet50/infer",
        open_inference_v2,
        accept_json(_v2_ok),
    ),
}


def named_system(name: str) -> Any:
    """The system a --systems name means: one of this service's entries (OURS_RUNTIME) or a peer."""
    if name in OURS_RUNTIME:
        return Ours(name)
    if name in PEER_SYSTEMS:
        return PEER_SYSTEMS[name]()
    raise ValueError(f"unknown system {name!r}: one of {', '.join([*OURS_RUNTIME, *PEER_SYSTEMS])}")


class Ours:
    """This service exactly as `make run` starts it (testkit.stack.Stack), driven through nginx, with its workers on
    the runtime (the setting RUNTIME) its entry `name` names in report.OURS_RUNTIME."""

    request = "multipart/form-data to /predict through nginx"

    def __init__(self, name: str = "ours") -> None:
        self.name, self.runtime = name, OURS_RUNTIME[name]
        self.stack: Any = None

    def version(self) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return f"{out.stdout.strip() or '?'} ({self.runtime})"

    def start(self, tmp: Path, model_dir: Path, photo: bytes, timeout: float) -> Target:
        from testkit.stack import Stack

        self.stack = Stack(
            Path(tempfile.mkdtemp(prefix="ours-", dir=tmp)),  # a fresh folder for each start
            env={"MODEL_DIR": str(model_dir), "THREADS": "1", "BATCH_SIZE": "8", "RUNTIME": self.runtime},
            workers=2,
        )
        self.stack.start(timeout=timeout)
        target = Target(self.stack.port, "/predict", multipart("file"), accept_json(_ours_ok))
        wait_answering(target, photo, timeout)
        return target

    @property
    def session(self) -> int:
        """The session id of the stack's processes (scripts/run.sh leads it; supervisord's programs stay in it)."""
        return self.stack.proc.pid

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
