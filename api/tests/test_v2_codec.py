"""v2_codec: request parsing (JSON and binary tensors) and response encoding, as pure functions."""

import base64
import json

import numpy as np
import pytest

import v2_codec
from v2_codec import Output, V2Error


def _binary_request(items: list[bytes], outputs=None, shape=None) -> tuple[dict, bytes]:
    payload = v2_codec.serialize_bytes(items)
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": shape or [len(items)],
                "parameters": {"binary_data_size": len(payload)},
            }
        ]
    }
    if outputs is not None:
        header["outputs"] = outputs
    return header, payload


def test_split_body_with_and_without_binary_data():
    header = json.dumps({"inputs": []}).encode()
    assert v2_codec.split_body(header, None) == (header, b"")
    assert v2_codec.split_body(header + b"\x01\x02", str(len(header))) == (header, b"\x01\x02")
    assert v2_codec.parse_header(header) == {"inputs": []}


@pytest.mark.parametrize("length", ["abc", "-1", "0", "99999", "1e3", ""])
def test_malformed_header_length_is_a_400(length):
    with pytest.raises(V2Error) as err:
        v2_codec.split_body(b'{"inputs": []}', length)
    assert err.value.status == 400 and "Inference-Header-Content-Length" in str(err.value)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"inputs": ['])
def test_non_json_or_non_object_header_is_a_400(body):
    with pytest.raises(V2Error):
        v2_codec.parse_header(body)


def test_bytes_round_trip_and_truncation():
    items = [b"abc", b"", b"\x00" * 5]
    assert v2_codec.deserialize_bytes(v2_codec.serialize_bytes(items)) == items
    raw = v2_codec.serialize_bytes(items)
    for cut in (2, 6, len(raw) - 1):
        with pytest.raises(V2Error):
            v2_codec.deserialize_bytes(raw[:cut])


def test_binary_image_request():
    header, payload = _binary_request([b"jpeg-1", b"jpeg-2"])
    req = v2_codec.parse_request(header, payload, max_batch=8)
    assert req.input_name == "image" and req.items == [b"jpeg-1", b"jpeg-2"] and req.batch == 2
    assert req.outputs == [Output("probabilities", False)]


def test_image_batch_may_be_shaped_n_by_1():
    header, payload = _binary_request([b"x"], shape=[1, 1])
    assert v2_codec.parse_request(header, payload, 8).items == [b"x"]


def test_json_image_request_is_base64():
    header = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(b"\x89PNG").decode()]}
        ]
    }
    assert v2_codec.parse_request(header, b"", 8).items == [b"\x89PNG"]
    header["inputs"][0]["data"] = ["not base64!"]
    with pytest.raises(V2Error, match="base64"):
        v2_codec.parse_request(header, b"", 8)


def test_fp32_request_binary_and_json():
    x = np.linspace(-123.68, 151.061, 224 * 224 * 3, dtype=np.float32).reshape(1, 224, 224, 3)
    header = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [1, 224, 224, 3],
                "parameters": {"binary_data_size": x.nbytes},
            }
        ]
    }
    np.testing.assert_array_equal(v2_codec.parse_request(header, x.tobytes(), 8).items, x)
    header = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 224, 224, 3], "data": x.tolist()}]}
    np.testing.assert_array_equal(v2_codec.parse_request(header, b"", 8).items, x)


@pytest.mark.parametrize(
    "tensor, binary, message",
    [
        ({"name": "pixels", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}, b"", "unexpected input"),
        ({"name": "image", "datatype": "FP32", "shape": [1], "data": [1.0]}, b"", "datatype BYTES"),
        ({"name": "input", "datatype": "BYTES", "shape": [1, 224, 224, 3], "data": ["x"]}, b"", "datatype FP32"),
        ({"name": "image", "datatype": "BYTES", "shape": [1, 2], "data": ["eA==", "eA=="]}, b"", "shape"),
        ({"name": "input", "datatype": "FP32", "shape": [1, 224, 224], "data": [1.0]}, b"", "shape"),
        ({"name": "image", "datatype": "BYTES", "shape": [0], "data": []}, b"", "batch size 0"),
        ({"name": "image", "datatype": "BYTES", "shape": [10**9], "data": []}, b"", "batch size"),
        ({"name": "image", "datatype": "BYTES", "shape": [2], "data": ["eA=="]}, b"", "2 elements"),
        ({"name": "image", "datatype": "BYTES", "shape": [1], "data": [3]}, b"", "must be strings"),
        ({"name": "image", "datatype": "BYTES", "shape": [1]}, b"", "neither"),
        (
            {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 9}},
            b"\0" * 5,
            "binary_data_size is 9",
        ),
        ({"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}, b"\0", "no input declares"),
        (
            {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": -1}},
            b"",
            "non-negative",
        ),
        (
            {"name": "input", "datatype": "FP32", "shape": [1, 224, 224, 3], "parameters": {"binary_data_size": 8}},
            b"\0" * 8,
            "bytes of FP32",
        ),
        (
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [1, 224, 224, 3],
                "parameters": {"binary_data_size": 602112},
            },
            np.full(150528, np.inf, "<f4").tobytes(),
            "finite",
        ),
        (
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [1, 224, 224, 3],
                "parameters": {"binary_data_size": 602112},
            },
            np.r_[np.zeros(150527, "<f4"), np.float32(3e38)].astype("<f4").tobytes(),  # the network's output: NaN
            "within ±1500",
        ),
        (
            {"name": "input", "datatype": "FP32", "shape": [1, 224, 224, 3], "data": [float("nan")] * 150528},
            b"",
            "finite",
        ),
        ({"name": "image", "datatype": "BYTES", "shape": "1", "data": ["eA=="]}, b"", "list of integers"),
    ],
)
def test_bad_inputs_are_400s(tensor, binary, message):
    with pytest.raises(V2Error, match=message) as err:
        v2_codec.parse_request({"inputs": [tensor]}, binary, max_batch=8)
    assert err.value.status == 400


def test_exactly_one_input():
    image = {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}
    for inputs in ([], [image, image], "x", None):
        with pytest.raises(V2Error, match="exactly one"):
            v2_codec.parse_request({"inputs": inputs}, b"", 8)


def test_outputs_binary_defaults_and_classification():
    image = {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}
    req = v2_codec.parse_request(
        {
            "inputs": [image],
            "parameters": {"binary_data_output": True},
            "outputs": [
                {"name": "probabilities", "parameters": {"classification": 3}},
                {"name": "heatmap", "parameters": {"binary_data": False}},
            ],
        },
        b"",
        8,
    )
    assert req.outputs == [Output("probabilities", True, 3), Output("heatmap", False)]
    for outputs, message in (
        ([{"name": "logits"}], "unknown output"),
        ([{"name": "heatmap", "parameters": {"classification": 2}}], "cannot be classified"),
        ([{"name": "probabilities", "parameters": {"classification": 11}}], "classification"),
        ([{"name": "probabilities"}, {"name": "probabilities"}], "twice"),
        ([{"name": "probabilities", "parameters": {"binary_data": "yes"}}], "binary_data"),
        ([], "non-empty"),
        (["probabilities"], "must be an object"),  # a bare name, even a valid one, is not an output object
        ([{"name": "probabilities"}, 5], "must be an object"),
    ):
        with pytest.raises(V2Error, match=message):
            v2_codec.parse_request({"inputs": [image], "outputs": outputs}, b"", 8)


def test_classification_strings_follow_triton():
    probs = np.zeros(1000, dtype=np.float32)
    probs[[281, 285, 7]] = [0.931, 0.05, 0.05]
    strings = v2_codec.classification_strings(probs, ["tabby", "Egyptian_cat", "cock"], 3)
    # std::to_string(float): six decimals; ties keep the lower index first; the label when known
    assert strings == [b"0.931000:281:tabby", b"0.050000:7:Egyptian_cat", b"0.050000:285:cock"]
    assert v2_codec.classification_strings(probs, ["tabby"], 2) == [b"0.931000:281:tabby", b"0.050000:7"]


def test_classification_of_more_classes_than_the_head_has_returns_them_all():
    probs = np.array([0.2, 0.7, 0.1], dtype=np.float32)  # a head of 3 classes, asked for 10
    rows = [v2_codec.classification_strings(probs, ["b", "a", "c"], 10)]  # the top labels, best first
    assert rows == [[b"0.700000:1:b", b"0.200000:0:a", b"0.100000:2:c"]]
    entry, _ = v2_codec.output_tensor(Output("probabilities", False, 10), rows)
    assert entry["shape"] == [1, 3] and len(entry["data"]) == 3  # Triton: min(k, classes)


def test_output_tensor_and_response_encoding():
    probs = np.linspace(0, 1, 2000, dtype=np.float32).reshape(2, 1000)
    entry, payload = v2_codec.output_tensor(Output("probabilities", True), probs)
    assert entry == {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [2, 1000],
        "parameters": {"binary_data_size": 8000},
    }
    assert np.array_equal(np.frombuffer(payload, "<f4").reshape(2, 1000), probs)
    entry_json, none = v2_codec.output_tensor(Output("probabilities", False), probs)
    assert none == b"" and len(entry_json["data"]) == 2000
    cls, cls_payload = v2_codec.output_tensor(Output("probabilities", True, 2), [[b"a:1", b"b:2"], [b"c:3", b"d:4"]])
    assert cls["datatype"] == "BYTES" and cls["shape"] == [2, 2]
    assert v2_codec.deserialize_bytes(cls_payload) == [b"a:1", b"b:2", b"c:3", b"d:4"]
    body, headers = v2_codec.encode_response({"outputs": [entry]}, [payload])
    length = int(headers["Inference-Header-Content-Length"])
    assert json.loads(body[:length]) == {"outputs": [entry]} and body[length:] == payload
    body, headers = v2_codec.encode_response({"outputs": [entry_json]}, [b""])
    assert headers == {"Content-Type": "application/json"} and json.loads(body)["outputs"][0]["shape"] == [2, 1000]


# Every JSON value a hostile client could put anywhere in a header (Python's json also reads NaN and Infinity).
HOSTILE = [None, True, 0, -1, 1.5, 2**70, float("nan"), float("inf"), "", "x" * 100_000, [], [1], {}, {"a": 1}]
HOSTILE.append(list(range(100_000)))


def _paths(node, prefix=()):
    """Every place in a header: each dict key, and the first two items of each list."""
    children = node.items() if isinstance(node, dict) else enumerate(node[:2]) if isinstance(node, list) else ()
    for key, child in children:
        yield prefix + (key,)
        yield from _paths(child, prefix + (key,))


def _headers():
    image = base64.b64encode(b"\xff\xd8 not decoded here").decode()
    outputs = [{"name": "probabilities", "parameters": {"classification": 3, "binary_data": True}}, {"name": "heatmap"}]
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [image], "parameters": {"x": 1}}
    yield {"id": "r1", "inputs": [tensor], "outputs": outputs, "parameters": {"binary_data_output": False}}
    yield {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 224, 224, 3], "data": [0.5] * 150528}]}


def test_any_value_anywhere_in_a_header_is_a_short_v2_error_or_a_request():
    """Never a TypeError (a 500), such as a list looked up in the dict of input names; messages quote at most
    v2_codec.SHOWN characters of what the client sent."""
    failures = []
    for template in _headers():
        for path in list(_paths(template)):
            for value in [*HOSTILE, "absent"]:
                header = json.loads(json.dumps(template))
                parent = header
                for key in path[:-1]:
                    parent = parent[key]
                if value == "absent":
                    parent.pop(path[-1])
                else:
                    parent[path[-1]] = value
                try:
                    v2_codec.parse_request(header, b"", 8)
                except V2Error as exc:
                    if len(str(exc)) > 300:
                        failures.append((path, repr(value)[:20], f"{len(str(exc))}-character message"))
                except Exception as exc:
                    failures.append((path, repr(value)[:20], f"{type(exc).__name__}: {exc}"))
    assert not failures, failures[:10]
