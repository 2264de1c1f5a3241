"""Memory for parsing an Open Inference Protocol request's JSON, reserved from the process's decode budget
(decode_budget) for as long as the parsing lasts.

Python's json makes an object of every value: a 16 MiB body of `{},` becomes 400 MiB of empty dicts, so a few
dozen such requests at once would be many times the API's memory limit. Before a document larger than SMALL is
parsed, its worst case is reserved: BYTES_PER_TOKEN for every value it can hold (each comma, bracket, brace or colon
can start one; the most measured per token is about 90 bytes, a one-key dict under a new key), plus TEXT_FACTOR
times its length (a string's characters take up to 4 bytes each, built in a buffer of twice that), plus BASE.

A document whose worst case alone exceeds the budget is a 413; one that does not fit next to the decodes and parses
in progress waits like a decode, then gets 503 + Retry-After. The reservation ends with the parsing, before any
image of the request is decoded, so it never holds memory while it waits for a decode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import decode_budget
import settings
from errors import DecodeBusy
from v2_codec import V2Error

SMALL = 64 * 1024  # parsed without a reservation (every binary request's header): at most ~5 MiB each
BYTES_PER_TOKEN = 96
TEXT_FACTOR = 8
BASE = 64 * 1024


def worst_case(text: bytes) -> int:
    """Bytes that parsing `text` could allocate, at most."""
    tokens = 1 + text.count(b",") + text.count(b"[") + text.count(b"{") + text.count(b":")
    return BASE + TEXT_FACTOR * len(text) + BYTES_PER_TOKEN * tokens


@contextlib.contextmanager
def reserved(text: bytes, deadline: float) -> Iterator[None]:
    """Hold the worst case of parsing `text` in the decode budget while the block runs; wait for it until
    DECODE_WAIT_S or `deadline` (unix time), whichever comes first."""
    if len(text) <= SMALL:
        yield
        return
    need = worst_case(text)
    budget = decode_budget.budget(settings.DECODE_MEMORY_MB)
    try:
        budget.acquire(need, decode_budget.wait_s(settings.DECODE_WAIT_S, deadline))
    except decode_budget.BudgetExceeded:
        raise V2Error(
            f"parsing this JSON could take {need / 2**20:.0f} MiB, more than the {budget.capacity / 2**20:.0f} MiB "
            "an API process has for it (DECODE_MEMORY_MB); send the tensor as binary data",
            413,
            "v2_too_large",
        ) from None
    except decode_budget.BudgetBusy:
        raise DecodeBusy("too many large requests are being parsed or decoded; retry later") from None
    try:
        yield
    finally:
        budget.release(need)
