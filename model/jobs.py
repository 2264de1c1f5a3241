"""A job as the worker sees it: one stream entry of ml:jobs (or of a version's stream), parsed leniently
(docs/queue-protocol.md)."""

from __future__ import annotations

import dataclasses
import math

from resnet_common import protocol

PAYLOAD_FIELDS = (b"image", b"pixels", b"input")  # the bulky fields: never logged nor dead-lettered


@dataclasses.dataclass
class Job:
    """One stream entry, parsed. `deliveries` counts how often Redis handed it out (1 on a first read)."""

    entry_id: str
    id: str
    pixels: bytes  # the API's decoded 224×224×3 uint8 image (docs/queue-protocol.md)
    filename: str
    enqueued: float
    deadline: float
    top_k: int
    explain: bool = False  # the client asked for a class activation heatmap
    deliveries: int = 1
    picked: float = 0.0
    image: bytes = b""  # an encoded upload (jobs queued by an API before pixels were shipped): refused
    preprocess: str = "keras"
    cache: str = ""  # request digest: store the answer in the response cache under it ("" = do not)
    tensor: bytes = b""  # `input`: an already preprocessed float32 224×224×3 model input (Open Inference Protocol)
    probs: bool = False  # the client wants the full probability vector (`probs` in the result)
    request_id: str = ""  # `rid`: the ID of the HTTP request that queued it, for the log
    stream: str = protocol.JOB_STREAM  # the stream it was read from: acknowledged and deleted there
    fields: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """(stream, entry id): an entry id is unique only within its stream."""
        return self.stream, self.entry_id

    def expired(self, now: float) -> bool:
        return now > self.deadline

    @property
    def named(self) -> str:
        """How the log names it: its id, its request's and its file."""
        return f"{self.id} (request {self.request_id or '-'}, {self.filename})"


def text(value: bytes | None, default: str = "") -> str:
    return value.decode("utf-8", "replace") if value is not None else default


def _number(value: bytes | None, default: float) -> float:
    try:
        number = float(value) if value is not None else default
    except ValueError:
        return default
    return number if math.isfinite(number) else default


def parse_job(entry_id: bytes, fields: dict[bytes, bytes], now: float, stream: str = protocol.JOB_STREAM) -> Job:
    """Lenient parsing: a malformed field gets a safe default rather than losing the job."""
    top_k = int(_number(fields.get(b"top_k"), protocol.TOP_K_DEFAULT))
    return Job(
        entry_id=text(entry_id),
        id=text(fields.get(b"id")),
        pixels=fields.get(b"pixels") or b"",
        image=fields.get(b"image") or b"",
        tensor=fields.get(b"input") or b"",
        probs=fields.get(b"probs") == b"1",
        preprocess=text(fields.get(b"preprocess"), "keras"),
        cache=text(fields.get(b"cache")),
        request_id=text(fields.get(b"rid"))[:64],
        filename=text(fields.get(b"filename")),
        enqueued=_number(fields.get(b"enqueued"), now),
        deadline=_number(fields.get(b"deadline"), math.inf),
        top_k=min(protocol.TOP_K_MAX, max(protocol.TOP_K_MIN, top_k)),
        explain=fields.get(b"explain") == b"1",
        picked=now,
        stream=stream,
        fields={text(k): text(v) for k, v in fields.items() if k not in PAYLOAD_FIELDS},
    )
