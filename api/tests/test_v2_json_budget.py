"""The decode budget held while an Open Inference Protocol request's JSON is parsed: its worst case bounds what
parsing really allocates, and a document that cannot fit is refused before it is parsed."""

import json
import threading
import time
import tracemalloc

import pytest

import decode_budget
import v2_json_budget
from errors import DecodeBusy
from v2_codec import V2Error


def array_of(unit: bytes, size: int = 1 << 20) -> bytes:
    return b"[" + unit * (size // len(unit)) + b"1]"


@pytest.mark.parametrize(
    "text",
    [
        array_of(b"[],"),
        array_of(b"{},"),
        array_of(b"0.5,"),
        array_of(b"1,"),
        array_of(b'"ab",'),
        array_of(b'{"a":1},'),
        array_of(b"[[]],"),
        array_of(b'"\\ud83d\\ude00",'),
        b"[" + b",".join(b'{"k%d":1}' % i for i in range(100_000)) + b"]",  # a new key in every dict
        b'["' + b"a" * 1_000_000 + "😀".encode() + b'"]',  # one character outside Latin-1: 4 bytes a character
        json.dumps({"inputs": [{"name": "input", "data": [[[0.123456, -1.5e3, 7.0]] * 224] * 20}]}).encode(),
    ],
)
def test_worst_case_bounds_what_parsing_allocates(text):
    tracemalloc.start()
    try:
        json.loads(text)
        allocated = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert allocated <= v2_json_budget.worst_case(text), allocated / v2_json_budget.worst_case(text)


def test_a_small_document_takes_nothing_from_the_budget(monkeypatch):
    monkeypatch.setenv("DECODE_MEMORY_MB", "11")
    with v2_json_budget.reserved(b"{}" * 1000, deadline=float("inf")):
        assert decode_budget.budget(11).used == 0


def test_a_large_document_holds_its_worst_case_while_parsed(monkeypatch):
    monkeypatch.setenv("DECODE_MEMORY_MB", "62")
    text = array_of(b"0.5,")
    with v2_json_budget.reserved(text, deadline=float("inf")):
        assert decode_budget.budget(62).used == v2_json_budget.worst_case(text)
    assert decode_budget.budget(62).used == 0


def test_a_document_over_the_whole_budget_is_a_413(monkeypatch):
    monkeypatch.setenv("DECODE_MEMORY_MB", "13")
    with pytest.raises(V2Error) as err:
        with v2_json_budget.reserved(array_of(b"{},", 16 << 20), deadline=float("inf")):
            pytest.fail("parsed")
    assert err.value.status == 413 and "binary data" in str(err.value)


def test_a_document_that_does_not_fit_beside_the_others_waits_then_is_busy(monkeypatch):
    monkeypatch.setenv("DECODE_MEMORY_MB", "64")
    monkeypatch.setenv("DECODE_WAIT_S", "0.05")
    held = decode_budget.budget(64)
    held.acquire(60 << 20, 0)
    try:
        with pytest.raises(DecodeBusy):
            with v2_json_budget.reserved(array_of(b"0.5,"), deadline=float("inf")):
                pytest.fail("parsed")
        freed = threading.Timer(0.3, held.release, args=(60 << 20,))
        freed.start()
        monkeypatch.setenv("DECODE_WAIT_S", "5")
        started = time.monotonic()
        with v2_json_budget.reserved(array_of(b"0.5,"), deadline=float("inf")):  # waits for the release
            assert time.monotonic() - started >= 0.25
            assert held.used == v2_json_budget.worst_case(array_of(b"0.5,"))
    finally:
        held.release(held.used)
