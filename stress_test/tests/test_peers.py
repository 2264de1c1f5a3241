"""bench-peers' load generator (against a real local HTTP server), its verdict and table, and raw OpenVINO."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from resnet_common.protocol import Runtime

from stress_test.peers import load, report, systems
from stress_test.peers.systems import accept_json, multipart, open_inference_v2
from testkit.source_addresses import source_address


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.client_address[0], body))
        fail = len(self.seen) % 5 == 0  # every fifth answer is an error the load must count
        payload = json.dumps({"success": not fail}).encode()
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_clients_come_from_distinct_loopback_addresses_with_unique_bytes(recorder):
    photo = b"\xff\xd8" + b"\x00" * 100
    target = load.Target(recorder.server_address[1], "/predict", multipart("file"), accept_json(lambda r: r["success"]))
    out = load.run(target, [("a.jpg", photo)], clients=3, duration=1.0, warmup=0.2)
    addresses = {addr for addr, _ in _Recorder.seen}
    assert addresses == {source_address(c) for c in range(3)}
    bodies = [body for _, body in _Recorder.seen]
    assert len(set(bodies)) == len(bodies)  # never the same bytes twice
    assert out["ok"] > 0 and out["errors"] > 0 and set(out["error_statuses"]) == {"500"}
    assert out["img_s"] == pytest.approx(out["ok"] / 1.0)


def test_open_inference_request_carries_the_file_in_base64():
    body, ctype = open_inference_v2("a.jpg", b"\x01\x02")
    tensor = json.loads(body)["inputs"][0]
    assert ctype == "application/json" and tensor["datatype"] == "BYTES" and tensor["data"] == ["AQI="]


def _data(ours_8: float, peer_8: float, ours_p50: float, peer_p50: float) -> dict:
    def system(img_s: float, p50: float) -> dict:
        loads = {"1": {"img_s": 5, "p50_ms": p50, "p99_ms": p50, "errors": 0}}
        loads["8"] = {"img_s": img_s, "p50_ms": 600, "p99_ms": 900, "errors": 0}
        return {"status": "ok", "version": "1", "request": "x", "loads": loads}

    return {
        "settings": {"loads": [1, 8], "duration_s": 6, "warmup_s": 2, "replicas": 2, "threads": 1, "max_batch": 8},
        "model": {"file": "resnet50.onnx"},
        "systems": {
            "ours": system(ours_8, ours_p50),
            "bentoml": system(peer_8, peer_p50),
            "ray": {"status": "failed", "error": "RuntimeError: boom", "version": "2"},
        },
    }


def test_verdict_met_only_with_the_margin_over_the_best_peer_and_no_worse_latency():
    assert report.verdict(_data(11.0, 10.0, 100, 100))["met"] is True
    missed = report.verdict(_data(10.9, 10.0, 100, 100))
    assert missed["met"] is False and missed["throughput_8_clients"]["ratio"] == 1.09
    assert report.verdict(_data(20.0, 10.0, 101, 100))["p50_1_client"]["met"] is False
    assert report.verdict(_data(20.0, 10.0, 101, 100))["peers_compared"] == ["bentoml"]  # ray failed: not compared


def test_section_has_a_row_per_system_and_says_why_one_did_not_run():
    text = report.peers_section(_data(11.0, 10.0, 100, 100))
    assert "| this service | 1 | 100 | 11 | 600 | 900 | 0 | – |" in text
    assert "did not run: RuntimeError: boom" in text and "**met**" in text


def test_why_missed_gives_the_cpu_budget_of_the_goal_against_raw_inference():
    data = _data(10.0, 10.0, 110, 100)
    data["settings"]["loads"] = [1, 8, 64]
    ours, peer = data["systems"]["ours"]["loads"], data["systems"]["bentoml"]["loads"]
    ours["8"] |= {"cpu_ms_per_img": 100.0, "cores_busy": 1.0}  # 1 core / (1.1 × 10 img/s): 90.9 ms allowed
    ours["64"] = {"img_s": 10.0, "p50_ms": 900, "p99_ms": 1500, "errors": 7, "cpu_ms_per_img": 100.0, "cores_busy": 1.0}
    peer["64"] = {"img_s": 12.0, "p50_ms": 900, "p99_ms": 4000, "errors": 0}  # 1 core / 13.2 img/s: 75.8 ms allowed
    data["raw_onnxruntime"] = [
        {"workers": 2, "threads": 1, "batch": 8, "img_s": 25.0, "p50_ms": 600.0, "per_image_ms": 80.0},
        {"workers": 1, "threads": 1, "batch": 1, "img_s": 12.0, "p50_ms": 95.0, "per_image_ms": 95.0},
    ]
    lines = report.why_missed(data, report.verdict(data))
    assert lines[0].startswith("- Why at 1 client:") and "+15.0 ms here and +5.0 ms with BentoML" in lines[0]
    assert "allows 90.9 ms per image: 9.1 ms less than now, of the 20.0 ms it spent beyond raw inference" in lines[1]
    assert "allows 75.8 ms per image, less than raw ONNX Runtime's inference alone costs (80.0 ms" in lines[2]
    assert "refused 7 requests with 503" in lines[3] and "p99 4000 ms" in lines[3]
    ours["8"] |= {"cpu_ms_per_img": 50.0}  # 90.9 ms allowed, 50 used: the cores were not the limit
    idle_line = report.why_missed(data, report.verdict(data))[1]
    assert "more than it used: it was not short of CPU but left cores idle" in idle_line and "0.55 cores" in idle_line
    assert report.why_missed(_data(11.0, 10.0, 100, 100), report.verdict(_data(11.0, 10.0, 100, 100))) == []


def test_this_service_on_openvino_is_judged_against_the_peers_and_not_counted_as_one():
    data = _data(10.0, 10.0, 100, 100)
    data["systems"]["ours_openvino"] = _data(11.0, 10.0, 90, 100)["systems"]["ours"]
    data["raw_onnxruntime"] = [{"workers": 1, "threads": 1, "batch": 1, "img_s": 12.0, "p50_ms": 95.0}]
    data["raw_openvino"] = [{"workers": 1, "threads": 1, "batch": 1, "img_s": 14.0, "p50_ms": 80.0}]
    default, openvino = report.verdict(data), report.verdict(data, "ours_openvino")
    assert default["peers_compared"] == openvino["peers_compared"] == ["bentoml"]  # ours_openvino is no peer
    assert default["met"] is False and default["throughput_8_clients"]["ratio"] == 1.0
    assert openvino["met"] is True and openvino["throughput_8_clients"]["ratio"] == 1.1
    text = report.peers_section(data)
    assert "Goal (ours ≥ 1.1× the best peer's img/s" in text and "**missed**" in text
    assert "workers on OpenVINO (`RUNTIME=openvino`), while the peers run ONNX Runtime as above: **met**" in text
    assert "| raw OpenVINO 1×1 batch 1 (no HTTP) |" in text
    data["systems"]["ours_openvino"]["loads"]["1"]["p50_ms"] = 101  # a lone request: 21 ms beyond raw OpenVINO
    lone = report.why_missed(data, report.verdict(data, "ours_openvino"))[0]
    assert "(80.0 ms with OpenVINO, 95.0 ms with the peers' ONNX Runtime)" in lone
    assert "+21.0 ms here and +5.0 ms with BentoML" in lone


def test_systems_are_named_by_what_runs_them():
    from stress_test.peers.systems import named_system

    assert (named_system("ours").name, named_system("ours").runtime) == ("ours", "onnxruntime")
    assert (named_system("ours_openvino").name, named_system("ours_openvino").runtime) == ("ours_openvino", "openvino")
    assert named_system("mlserver").path == "/v2/models/resnet50/infer"
    with pytest.raises(ValueError, match="unknown system 'ours_tensorrt'"):
        named_system("ours_tensorrt")  # not one of this service's entries: neither run nor judged as a peer
    assert set(systems.OURS_RUNTIME) <= set(report.LABELS)


def test_openvino_runs_the_same_onnx_file_as_onnxruntime(tmp_path):
    pytest.importorskip("openvino")
    import onnxruntime as ort

    from stress_test.openvino_runner import open_compiled
    from testkit.tiny_model import write_tiny_model

    path = tmp_path / "tiny.onnx"
    write_tiny_model(path)
    batch = np.random.default_rng(1).normal(0, 50, (2, 224, 224, 3)).astype(np.float32)
    session = open_compiled(str(path), threads=1, spin=False, batch=2)
    assert session.get_inputs()[0].name == "input"
    got = session.run(["probabilities"], {"input": batch})[0]
    want = ort.InferenceSession(str(path)).run(["probabilities"], {"input": batch})[0]
    assert got.shape == (2, 1000)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("runtime", list(Runtime))  # the members main() passes, not their strings
def test_raw_rows_are_the_served_and_the_lone_configuration_on_that_runtime(tmp_path, runtime):
    pytest.importorskip(runtime)
    import importlib.metadata

    from stress_test.peers import driver
    from testkit.tiny_model import write_tiny_model

    path = tmp_path / "tiny.onnx"
    write_tiny_model(path)
    rows = driver.raw_runtime(runtime, path, duration=0.3, warmup=0.1)
    assert [(r["workers"], r["threads"], r["batch"]) for r in rows] == [(2, 1, 8), (1, 1, 1)]
    assert all(r["img_s"] > 0 and r["runtime"] == f"{runtime} {importlib.metadata.version(runtime)}" for r in rows)
    data = {"settings": {"replicas": 2, "threads": 1, "max_batch": 8}, f"raw_{runtime}": rows}
    assert report.served_raw(data, runtime) == (rows[0], rows[1])


def test_a_raw_baseline_for_an_unknown_runtime_is_refused():
    from stress_test import ort_runner, raw_runtime

    with pytest.raises(ValueError, match="no raw runner for RUNTIME='tensorrt'"):
        raw_runtime.run("tensorrt", ort_runner.Config("model.onnx", 1, 1, 1, 0.1, 0.1))


def test_session_cpu_counts_the_busy_processes_of_that_session_only():
    import subprocess
    import sys
    import time

    # 0.5 s of CPU, asserted as >= 0.4: /proc counts whole ticks (10 ms), summed in floats
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\ntime.sleep(30)\n"
    child = subprocess.Popen([sys.executable, "-c", busy], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while load.session_cpu_seconds(child.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0.4 <= load.session_cpu_seconds(child.pid) < 5
    finally:
        child.kill()
        child.wait()
    assert load.summary(1, 2.0, [(0.1, 200, True)] * 4, cpu_s=1.0)["cpu_ms_per_img"] == 250.0


class _FakeSystem:
    """A system whose start/stop are recorded; `fails_on` makes its nth start raise."""

    running: set = set()

    def __init__(self, name: str, fails_on: int = 0) -> None:
        self.name, self.request, self.fails_on, self.starts = name, f"{name} request", fails_on, 0
        self.session = 0

    def version(self) -> str:
        return "1.0"

    def start(self, *_args):
        self.starts += 1
        if self.starts == self.fails_on:
            raise RuntimeError("would not answer")
        self.running.add(self.name)
        return self.name

    def stop(self) -> None:
        self.running.discard(self.name)


def test_each_system_is_measured_alone_in_every_round(monkeypatch, tmp_path):
    from argparse import Namespace

    from stress_test.peers import driver

    measured: list[tuple[str, int, set]] = []

    def completions(target, photos, clients, duration, warmup, probe=None):
        measured.append((target, clients, set(_FakeSystem.running)))
        return [(0.0, 0.05, True)] * clients, 1.0

    monkeypatch.setattr(driver, "completions", completions)
    monkeypatch.setattr(
        driver, "summary", lambda clients, duration, out, cpu_s=None: {"n": len(out), "s": duration, "cpu": cpu_s}
    )
    systems = [_FakeSystem("ours"), _FakeSystem("ray"), _FakeSystem("mlserver", fails_on=2)]
    args = Namespace(rounds=2, loads=[1, 8], duration=1.0, warmup=0.0)
    entries = driver.in_turn(systems, tmp_path, tmp_path, [("a.jpg", b"x")], args)
    assert all(running == {target} for target, _, running in measured)  # nobody else up while one is measured
    assert [(t, c) for t, c, _ in measured] == [
        ("ours", 1), ("ours", 8), ("ray", 1), ("ray", 8), ("mlserver", 1), ("mlserver", 8),
        ("ours", 1), ("ours", 8), ("ray", 1), ("ray", 8),
    ]  # fmt: skip
    assert not _FakeSystem.running and [s.starts for s in systems] == [2, 2, 2]
    assert entries["ours"]["loads"]["8"] == {"n": 16, "s": 2.0, "cpu": 2.0} and len(entries["ours"]["startup_s"]) == 2
    assert entries["mlserver"]["status"] == "failed" and "would not answer" in entries["mlserver"]["error"]
    assert entries["mlserver"]["loads"]["1"] == {"n": 1, "s": 1.0, "cpu": 1.0}  # its one round, over its own window
