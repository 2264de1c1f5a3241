"""Open Inference Protocol (KServe V2) request and response bodies: JSON tensors and Triton's binary tensor data.

Pure functions on bytes, dicts and numpy arrays; every malformed input raises `V2Error` (400) with a message a
client can act on. The binary extension: the body starts with `Inference-Header-Content-Length` bytes of JSON,
followed by each binary tensor in the order of the inputs that declare `parameters.binary_data_size`. A BYTES
tensor is serialized element by element as a 4-byte little-endian length and the bytes (Triton's layout).
In JSON, an `image` element is the encoded file in base64 (JSON strings cannot carry arbitrary bytes).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import struct
from typing import TYPE_CHECKING, Any


import safe_json
import v2_models

if TYPE_CHECKING:  # numpy loads on the first inference, not when a gunicorn worker boots
    import numpy as np

SHOWN = 60  # characters of a client's value an error message quotes
# Bound on an FP32 input value: ten times what preprocess_input produces, far below what overflows the network
# (near float32's largest, its output turns NaN: the worker's inference error, a 503, for what is a bad input).
FP32_MAX_ABS = 1500.0
MAX_CLASSIFICATION = 10  # classification counts are answered with labels up to the worker's top_k limit


class V2Error(Exception):
    """A request the protocol cannot accept; `status` is the HTTP status (400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400, kind: str = "v2_bad_request") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind  # kind: the error counter's label


@dataclasses.dataclass(frozen=True)
class Output:
    """One requested output: its name, whether it comes back as binary data, and a classification count (0: no)."""

    name: str
    binary: bool
    classification: int = 0


@dataclasses.dataclass
class InferRequest:
    """A parsed request: exactly one input, as N encoded files (`image`) or an N×224×224×3 float32 array."""

    id: str | None
    input_name: str
    items: list[bytes] | np.ndarray
    outputs: list[Output]

    @property
    def batch(self) -> int:
        return len(self.items)


def _shown(value: Any) -> str:
    """A client's value as an error message quotes it: its repr, cut to SHOWN characters (it may be megabytes)."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes | memoryview]:
    """The JSON header's text and the binary data after it: a view into `body`, not a copy of a body that may be
    MAX_CONTENT_LENGTH long."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length.strip(), 10)
    except ValueError:
        raise V2Error(f"Inference-Header-Content-Length must be an integer, got {header_length[:40]!r}") from None
    if not 0 < length <= len(body):
        raise V2Error(f"Inference-Header-Content-Length {length} does not fit a body of {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def parse_header(text: bytes) -> dict:
    """The request header: a JSON object."""
    try:
        parsed = safe_json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise V2Error(f"the request header is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise V2Error("the request header must be a JSON object")
    return parsed


def parse_request(header: dict, binary: bytes | memoryview, max_batch: int) -> InferRequest:
    """Validate names, datatypes, shapes and data sizes; decode base64 and binary data into the items."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        names = ", ".join(v2_models.INPUTS)
        raise V2Error(f"'inputs' must hold exactly one tensor, one of: {names}")
    tensor = inputs[0]
    name = tensor.get("name")
    if not isinstance(name, str) or name not in v2_models.INPUTS:
        raise V2Error(f"unexpected input {_shown(name)}; this model takes one of: {', '.join(v2_models.INPUTS)}")
    datatype, item_shape = v2_models.INPUTS[name]
    if tensor.get("datatype") != datatype:
        raise V2Error(f"input {name!r} must have datatype {datatype}, got {_shown(tensor.get('datatype'))}")
    batch = _batch_of(name, tensor.get("shape"), item_shape, max_batch)
    params = _params(tensor, f"input {name!r}")
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise V2Error(f"input {name!r}: binary_data_size must be a non-negative integer")
        if size != len(binary):
            raise V2Error(f"input {name!r}: binary_data_size is {size} but {len(binary)} bytes of binary data follow")
        if "data" in tensor:
            raise V2Error(f"input {name!r} has both 'data' and binary_data_size")
        raw: Any = binary
    elif binary:
        raise V2Error(f"{len(binary)} bytes of binary data follow but no input declares binary_data_size")
    elif "data" in tensor:
        raw = tensor["data"]
    else:
        raise V2Error(f"input {name!r} has neither 'data' nor binary_data_size")
    if datatype == "BYTES":
        items: list[bytes] | np.ndarray = _bytes_items(name, raw, batch)
    else:
        items = _fp32_items(name, raw, batch, item_shape)
    return InferRequest(_request_id(header), name, items, _outputs(header))


def _batch_of(name: str, shape: Any, item_shape: tuple[int, ...], max_batch: int) -> int:
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise V2Error(f"input {name!r}: 'shape' must be a list of integers")
    allowed = [[-1, *item_shape]] + ([[-1, 1]] if not item_shape else [])  # an image batch may be [N] or [N, 1]
    if not any(len(shape) == len(a) and shape[1:] == a[1:] for a in allowed):
        wanted = " or ".join(str(["N", *a[1:]]).replace("'", "") for a in allowed)
        raise V2Error(f"input {name!r} must have shape {wanted}, got {_shown(shape)}")
    batch = shape[0]
    if not 1 <= batch <= max_batch:
        raise V2Error(f"input {name!r}: batch size {batch} is outside 1..{max_batch} (V2_MAX_BATCH)")
    return batch


def _params(obj: dict, where: str) -> dict:
    params = obj.get("parameters", {})
    if not isinstance(params, dict):
        raise V2Error(f"{where}: 'parameters' must be a JSON object")
    return params


def _request_id(header: dict) -> str | None:
    rid = header.get("id")
    if rid is not None and not isinstance(rid, str):
        raise V2Error("'id' must be a string")
    return rid


def _bytes_items(name: str, raw: Any, batch: int) -> list[bytes]:
    """N encoded files: from Triton's length-prefixed binary layout, or from base64 strings in JSON."""
    if isinstance(raw, (bytes, memoryview)):
        items = deserialize_bytes(raw, name)
    else:
        strings = _flatten(raw, name)
        if not all(isinstance(s, str) for s in strings):
            raise V2Error(f"input {name!r}: JSON data of a BYTES tensor must be strings (base64 of each file)")
        items = []
        for i, text in enumerate(strings):
            try:
                items.append(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError):
                raise V2Error(f"input {name!r}: element {i} is not valid base64") from None
    if len(items) != batch:
        raise V2Error(f"input {name!r}: shape says {batch} elements, the data holds {len(items)}")
    return items


def deserialize_bytes(raw: bytes | memoryview, name: str = "") -> list[bytes]:
    """Triton's BYTES layout: for each element a uint32 little-endian length, then that many bytes (each a copy)."""
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise V2Error(f"input {name!r}: binary BYTES data ends inside an element's length prefix")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise V2Error(f"input {name!r}: binary BYTES element of {length} bytes runs past the data")
        items.append(bytes(raw[offset : offset + length]))
        offset += length
    return items


def serialize_bytes(items: list[bytes]) -> bytes:
    """The inverse of deserialize_bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _fp32_items(name: str, raw: Any, batch: int, item_shape: tuple[int, ...]) -> np.ndarray:
    import numpy as np

    expected = batch * int(np.prod(item_shape))
    if isinstance(raw, (bytes, memoryview)):
        if len(raw) != expected * 4:
            raise V2Error(f"input {name!r}: {len(raw)} bytes of FP32 data, the shape needs {expected * 4}")
        array = np.frombuffer(raw, dtype="<f4")
    else:
        values = _flatten(raw, name)
        if len(values) != expected:
            raise V2Error(f"input {name!r}: {len(values)} values, the shape needs {expected}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise V2Error(f"input {name!r}: FP32 data must be numbers")
        array = np.asarray(values, dtype="<f4")
    if not (array.min() >= -FP32_MAX_ABS and array.max() <= FP32_MAX_ABS):  # a NaN makes both NaN: false
        raise V2Error(
            f"input {name!r}: FP32 data must be finite and within ±{FP32_MAX_ABS:g} (preprocess_input leaves it "
            "between -123.68 and 151.061)"
        )
    return array.reshape(batch, *item_shape)


def _flatten(raw: Any, name: str, limit: int = 1 << 24) -> list:
    """Row-major flattening of (possibly nested) JSON lists; Triton's JSON accepts both forms."""
    if not isinstance(raw, list):
        raise V2Error(f"input {name!r}: 'data' must be a list")
    out: list = []
    stack = [iter(raw)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
            if len(out) > limit:
                raise V2Error(f"input {name!r}: too many values")
        else:
            stack.pop()
    return out


def _outputs(header: dict) -> list[Output]:
    """The requested outputs; none named → `probabilities` alone (the heatmap is computed only when named)."""
    binary_default = _params(header, "request").get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise V2Error("binary_data_output must be true or false")
    requested = header.get("outputs")
    if requested is None:
        return [Output("probabilities", binary_default)]
    if not isinstance(requested, list) or not requested:
        raise V2Error("'outputs' must be a non-empty list")
    outputs, seen = [], set()
    for entry in requested:
        if not isinstance(entry, dict):
            raise V2Error(f"each requested output must be an object with a 'name', got {_shown(entry)}")
        name = entry.get("name")
        if not isinstance(name, str) or name not in v2_models.OUTPUTS:
            raise V2Error(f"unknown output {_shown(name)}; this model has: {', '.join(v2_models.OUTPUTS)}")
        if name in seen:
            raise V2Error(f"output {name!r} requested twice")
        seen.add(name)
        params = _params(entry, f"output {name!r}")
        binary = params.get("binary_data", binary_default)
        count = params.get("classification", 0)
        if not isinstance(binary, bool):
            raise V2Error(f"output {name!r}: binary_data must be true or false")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_CLASSIFICATION:
            raise V2Error(f"output {name!r}: classification must be an integer from 1 to {MAX_CLASSIFICATION}")
        if count and name != "probabilities":
            raise V2Error(f"output {name!r} cannot be classified; ask classification of 'probabilities'")
        outputs.append(Output(name, binary, count))
    return outputs


def classification_strings(probs: np.ndarray, labels: list[str], k: int) -> list[bytes]:
    """Triton's classification format "<value>:<index>:<label>": the value as C++ std::to_string(float) prints
    it (six decimals), the k highest first (ties: lower index first), the label when one is known."""
    import numpy as np

    order = np.argsort(-probs, kind="stable")[:k]
    out = []
    for rank, index in enumerate(order):
        text = f"{float(probs[index]):f}:{int(index)}"
        if rank < len(labels):
            text += f":{labels[rank]}"
        out.append(text.encode())
    return out


def output_tensor(output: Output, data: np.ndarray | list[list[bytes]]) -> tuple[dict, bytes]:
    """One response output: its JSON entry, and its binary data (b"" when sent as JSON)."""
    import numpy as np

    if output.classification:
        rows = data
        flat = [s for row in rows for s in row]
        shape = [len(rows), len(rows[0]) if rows else output.classification]  # k, or the classes when fewer
        entry: dict[str, Any] = {"name": output.name, "datatype": "BYTES", "shape": shape}
        if output.binary:
            payload = serialize_bytes(flat)
            entry["parameters"] = {"binary_data_size": len(payload)}
            return entry, payload
        entry["data"] = [s.decode() for s in flat]
        return entry, b""
    array = np.ascontiguousarray(data, dtype="<f4")
    entry = {"name": output.name, "datatype": "FP32", "shape": list(array.shape)}
    if output.binary:
        payload = array.tobytes()
        entry["parameters"] = {"binary_data_size": len(payload)}
        return entry, payload
    entry["data"] = array.ravel().tolist()
    return entry, b""


def encode_response(header: dict, binaries: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: plain JSON, or JSON followed by the binary outputs."""
    text = json.dumps(header, separators=(",", ":")).encode()
    if not any(binaries):
        return text, {"Content-Type": "application/json"}
    return text + b"".join(binaries), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(text)),
    }
