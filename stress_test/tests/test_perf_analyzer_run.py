"""make perf's runner: perf_analyzer's input data and how one level's outcome is read (a stand-in binary)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

from stress_test import perf_analyzer_run as runner

CSV = "Concurrency,Inferences/Second,Client Send,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n"


def test_data_file_holds_unique_serialized_bytes_tensors(tmp_path):
    path = tmp_path / "data.json"
    assert runner.data_file(path, 12, "run-a c1") == 12
    entries = json.loads(path.read_text())["data"]
    raw = [base64.b64decode(e["image"]["b64"]) for e in entries]
    for item in raw:  # Triton's BYTES layout: uint32 little-endian length, then the file
        (length,) = struct.unpack_from("<I", item)
        assert length == len(item) - 4 and item[4:6] == b"\xff\xd8"
    assert len({hashlib.sha256(item).hexdigest() for item in raw}) == 12
    other = tmp_path / "other.json"
    runner.data_file(other, 12, "run-b c1")
    assert not {e["image"]["b64"] for e in entries} & {e["image"]["b64"] for e in json.loads(other.read_text())["data"]}


def test_each_level_gets_more_inputs_than_it_can_send():
    for level in runner.LEVELS:
        assert runner.unique_per_level(level) > runner.MAX_TRIALS * runner.window(level) + level


def _fake_binary(tmp_path, body: str):
    script = tmp_path / "perf_analyzer"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_run_level_reads_the_csv(tmp_path):
    row = "4,12.5,90,10,300000,400000,450000,500000\n"
    fake = _fake_binary(tmp_path, f'while [ "$1" != "-f" ]; do shift; done; printf "{CSV}{row}" > "$2"\n')
    out = runner.run_level(fake, "http://127.0.0.1:1", tmp_path / "d.json", 4, tmp_path / "c4.csv", {})
    assert (out["throughput"], out["p50_ms"], out["p99_ms"]) == (12.5, 300.0, 500.0) and "error" not in out


def test_run_level_reads_the_servers_side_when_the_statistics_give_it(tmp_path):
    header = "Concurrency,Inferences/Second,Server Queue,Server Compute Input,Server Compute Infer,p50 latency,p90 latency,p99 latency\n"
    row = "2,20.9,1064,2983,81308,88579,102197,247882\n"
    fake = _fake_binary(tmp_path, f'while [ "$1" != "-f" ]; do shift; done; printf "{header}{row}" > "$2"\n')
    out = runner.run_level(fake, "http://127.0.0.1:1", tmp_path / "d.json", 2, tmp_path / "c2.csv", {})
    assert (out["server_queue_ms"], out["server_input_ms"], out["server_infer_ms"]) == (1.1, 3.0, 81.3)
    assert "server_output_ms" not in out  # a column perf_analyzer did not write


def test_run_level_records_a_shed_level(tmp_path):
    fake = _fake_binary(tmp_path, 'echo "Thread [3] had error: service at its admission limit; retry later"; exit 1\n')
    out = runner.run_level(fake, "http://127.0.0.1:1", tmp_path / "d.json", 64, tmp_path / "c64.csv", {})
    assert out["shed"] is True and "admission limit" in out["error"] and "throughput" not in out
