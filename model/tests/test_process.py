"""Worker processes end to end: SIGTERM mid-batch, Redis restart, the supervisor of `python ml_service.py`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from resnet_common import protocol
from helpers import MODEL_SRC, enqueue, photo, result, subprocess_env
from testkit import wait_until

pytestmark = pytest.mark.timeout(120)


def env_for(server, model_dir: str, labels_file: str, **extra) -> dict[str, str]:
    base = dict(
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=server.port,
        MODEL_DIR=model_dir,
        LABELS_FILE=labels_file,
        WORKERS=1,
        THREADS=1,
        CLAIM_INTERVAL_S=0.2,
        HEARTBEAT_INTERVAL_S=0.2,
        LOG_LEVEL="DEBUG",
    )
    base.update(extra)
    return subprocess_env(base)


def start_worker(env: dict[str, str], main: bool = False) -> subprocess.Popen:
    cmd = (
        [sys.executable, "ml_service.py"]
        if main
        else [sys.executable, "-c", "import sys, ml_service; sys.exit(ml_service.classify_process())"]
    )
    return subprocess.Popen(cmd, cwd=MODEL_SRC, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ready_workers(client) -> dict[str, dict[str, str]]:
    workers = {}
    for name in client.zrange(protocol.HEARTBEATS_KEY, 0, -1):
        fields = {k.decode(): v.decode() for k, v in client.hgetall(protocol.worker_key(name.decode())).items()}
        if fields.get("ready") == "1":
            workers[name.decode()] = fields
    return workers


def wait_for(predicate, timeout: float = 30, proc: subprocess.Popen | None = None):
    """wait_until, failing at once with the worker's output if it exits first."""

    def check():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"worker exited early ({proc.returncode}):\n{proc.stdout.read()}")
        return predicate()

    return wait_until(check, timeout, "the worker", 0.01)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return out


def test_sigterm_finishes_and_acks_the_current_batch(r, redis_server, real_model_dir, labels_file):
    proc = start_worker(env_for(redis_server, real_model_dir, labels_file, BATCH_SIZE=4))
    try:
        wait_for(lambda: ready_workers(r), proc=proc)
        pipe = r.pipeline(transaction=True)  # all 12 arrive at once
        ids = [enqueue(pipe, photo()) for _ in range(12)]
        pipe.execute()
        wait_for(lambda: r.xpending(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)["pending"] > 0, proc=proc)
        proc.send_signal(signal.SIGTERM)  # while a batch of 4 is in ONNX Runtime
        assert proc.wait(20) == 0
    finally:
        out = stop(proc)
    answered = [i for i in ids if r.exists(protocol.result_key(i))]
    n = len(answered)
    assert n in (4, 8) and answered == ids[:n], out  # the batch in hand (rarely the next), never more
    assert all(result(r, i, 1)["ok"] for i in answered)
    assert (
        r.xlen(protocol.JOB_STREAM) == 12 - n
        and r.xpending(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)["pending"] == 0
    )
    assert r.zcard(protocol.HEARTBEATS_KEY) == 0 and not r.keys(protocol.worker_key("*"))
    assert "stopped after" in out and f"{n} jobs in {n // 4} batches" in out


def test_worker_recovers_from_a_redis_restart(redis_factory, tiny_model_dir, labels_file):
    server = redis_factory()
    client = server.client()
    proc = start_worker(env_for(server, tiny_model_dir, labels_file))
    try:
        wait_for(lambda: ready_workers(client), proc=proc)
        assert result(client, enqueue(client, photo()))["ok"] is True
        server.stop()
        time.sleep(1.0)
        assert proc.poll() is None  # still running through the outage
        server.start()  # empty: no stream, no group, no heartbeat
        client = server.client()
        job_id = enqueue(client, photo())  # added before the worker has recreated the group
        res = result(client, job_id, timeout=15)
        assert res and res["ok"] is True
        assert wait_for(lambda: ready_workers(client), timeout=5)
    finally:
        out = stop(proc)
    assert "Redis unreachable" in out and "Redis is back" in out


def test_supervisor_runs_workers_restarts_the_dead_and_stops_cleanly(r, redis_server, tiny_model_dir, labels_file):
    proc = start_worker(env_for(redis_server, tiny_model_dir, labels_file, WORKERS=2, HEARTBEAT_TTL_S=3), main=True)
    try:
        workers = wait_for(lambda: (w := ready_workers(r)) and len(w) == 2 and w, proc=proc)
        assert {f["threads"] for f in workers.values()} == {"1"}
        victim_name, victim = next(iter(workers.items()))
        os.kill(int(victim["pid"]), signal.SIGKILL)
        replaced = wait_for(lambda: (w := ready_workers(r)) and set(w) - set(workers) and w, proc=proc)
        ids = [enqueue(r, photo()) for _ in range(6)]
        assert all(result(r, i)["ok"] for i in ids)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        out = stop(proc)
    live = [name for name in replaced if name != victim_name]
    assert len(live) == 2 and not any(r.exists(protocol.worker_key(n)) for n in live), out
    assert "restarting it" in out


def test_missing_model_fails_fast(r, redis_server, tmp_path, labels_file):
    proc = start_worker(env_for(redis_server, str(tmp_path), labels_file, WORKERS=1), main=True)
    proc.wait(30)
    out = proc.stdout.read()
    assert proc.returncode == 1 and "convert the model first" in out and "stopping all" in out


def test_a_worker_whose_loop_is_stuck_is_ended_and_replaced(redis_factory, tiny_model_dir, labels_file):
    """stall_watchdog: a loop that does not come round for HEALTH_STALL_S ends its process, and the supervisor
    starts a new worker. The stall here is real: Redis frozen with SIGSTOP holds the loop in a read for ~6 s (its
    socket timeout), longer than the 2 s allowed."""
    server = redis_factory()
    client = server.client()
    env = env_for(server, tiny_model_dir, labels_file, WORKERS=1, HEALTH_STALL_S=2, HEARTBEAT_TTL_S=3)
    proc = start_worker(env, main=True)
    try:
        before = wait_for(lambda: ready_workers(client), proc=proc)
        os.kill(server.proc.pid, signal.SIGSTOP)
        time.sleep(4)  # past HEALTH_STALL_S, before the read's socket timeout
        os.kill(server.proc.pid, signal.SIGCONT)
        wait_for(lambda: set(ready_workers(client)) - set(before), timeout=30, proc=proc)  # a new worker's name
        assert result(client, enqueue(client, photo()))["ok"] is True
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        out = stop(proc)
    assert "worker loop stuck for" in out and "died (exit 70); restarting it" in out, out


def test_a_worker_advertises_and_answers_the_classes_of_its_own_head(r, redis_server, tmp_path, labels_file):
    from testkit.tiny_model import make_tiny_model_dir

    flowers = ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    folder = make_tiny_model_dir(tmp_path / "flowers", classes=5, names=flowers)
    proc = start_worker(env_for(redis_server, str(folder), labels_file))
    try:
        (fields,) = wait_for(lambda: list(ready_workers(r).values()), proc=proc)
        assert fields["classes"] == "5"  # what the API's metadata shows as the probabilities' shape
        answer = result(r, enqueue(r, photo(), top_k=3))
        assert answer["ok"] and {label for label, _ in answer["top_k"]} <= set(flowers)
    finally:
        stop(proc)
