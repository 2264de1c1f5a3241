"""A minimal peer for the API's queue tests: reads jobs like the model service and answers per the protocol."""

import json
import threading
import time
from collections.abc import Callable

import redis

from resnet_common import protocol


class FakeWorker(threading.Thread):
    """XREADGROUP jobs, answer each with `answer(fields)` (a result dict, or None to stay silent). With `version`,
    it also reads that version's stream, as a worker serving it does. When the test has published no heartbeat
    of its own, it beats once as a ready worker serving `version` (the API answers 503 at once while no worker
    is ready, SCALE_FROM_ZERO off), and leaves the fleet when it stops."""

    def __init__(
        self,
        port: int,
        answer: Callable[[dict], dict | None],
        name: str = "fake-0",
        password: str | None = None,
        version: str | None = None,
    ):
        super().__init__(daemon=True)
        self.r = redis.Redis(host="127.0.0.1", port=port, password=password)
        self.beats = not self.r.exists(protocol.HEARTBEATS_KEY)
        if self.beats:
            heartbeat(self.r, name, **({"model_version": version} if version else {}))
        self.answer, self.name_ = answer, name
        self.streams = [protocol.JOB_STREAM] + ([protocol.version_stream(version)] if version else [])
        self.jobs: list[dict] = []
        self.read_from: list[str] = []  # the stream of each job in `jobs`
        self.stop = threading.Event()
        for stream in self.streams:
            try:
                self.r.xgroup_create(stream, protocol.CONSUMER_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                assert "BUSYGROUP" in str(exc)

    def run(self) -> None:
        while not self.stop.is_set():
            reply = self.r.xreadgroup(
                protocol.CONSUMER_GROUP, self.name_, {stream: ">" for stream in self.streams}, count=8, block=50
            )
            for stream, entries in reply or []:
                for entry_id, raw in entries:
                    fields = {k.decode(): v for k, v in raw.items()}
                    self.jobs.append(fields)
                    self.read_from.append(stream.decode())
                    result = self.answer(fields) if "top_k" in fields else None
                    if result is None:
                        continue
                    job_id = fields["id"].decode()
                    pipe = self.r.pipeline()
                    pipe.rpush(protocol.result_key(job_id), json.dumps({"id": job_id, **result}))
                    pipe.expire(protocol.result_key(job_id), 60)
                    pipe.xack(stream, protocol.CONSUMER_GROUP, entry_id)
                    pipe.xdel(stream, entry_id)
                    pipe.execute()

    def __enter__(self) -> "FakeWorker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(5)
        if self.beats:  # gone, as a worker stopping gracefully is
            self.r.pipeline().zrem(protocol.HEARTBEATS_KEY, self.name_).delete(
                protocol.worker_key(self.name_)
            ).execute()


def ok_result(fields: dict) -> dict:
    top_k = int(fields["top_k"])
    pairs = [
        ["tabby", 0.7],
        ["tiger_cat", 0.2],
        ["lynx", 0.05],
        ["Persian_cat", 0.03],
        ["cougar", 0.01],
        ["a", 0.005],
        ["b", 0.003],
        ["c", 0.001],
        ["d", 0.0005],
        ["e", 0.0001],
    ][:top_k]
    return {
        "ok": True,
        "prediction": "tabby",
        "score": 0.7,
        "top_k": pairs,
        "error": None,
        "message": "",
        "worker": "fake-0",
        "batch_size": 1,
        "queued_ms": 1.5,
        "inference_ms": 20.0,
    }


def error_result(code: str, message: str) -> Callable[[dict], dict]:
    def answer(fields: dict) -> dict:
        return {
            "ok": False,
            "prediction": None,
            "score": None,
            "top_k": [],
            "error": code,
            "message": message,
            "worker": "fake-0",
            "batch_size": 1,
            "queued_ms": 0.0,
            "inference_ms": 0.0,
        }

    return answer


def heartbeat(
    r: redis.Redis,
    name: str,
    ready: bool = True,
    age_s: float = 0.0,
    metrics: str = "",
    model: str = "ResNet50",
    variant: str = "fp32",
    **extra: str,
) -> None:
    """Publish a worker's heartbeat and status hash the way the model service does."""
    r.zadd(protocol.HEARTBEATS_KEY, {name: time.time() - age_s})
    r.hset(
        protocol.worker_key(name),
        mapping={
            "pid": "123",
            "host": "h",
            "model": model,
            "variant": variant,
            "ready": "1" if ready else "0",
            "batch_size": "8",
            "threads": "1",
            "classes": "1000",
            "metrics": metrics,
            **extra,
        },
    )
    r.expire(protocol.worker_key(name), 10)
