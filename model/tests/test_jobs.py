"""Parsing stream entries: defaults for what is missing or malformed, never a lost job."""

from __future__ import annotations

import math

import pytest

from jobs import parse_job


def entry(**fields) -> dict[bytes, bytes]:
    base = {
        b"id": b"abc",
        b"image": b"\xff\xd8",
        b"filename": b"x.jpg",
        b"enqueued": b"100.5",
        b"deadline": b"130.5",
        b"top_k": b"3",
    }
    base.update({k.encode(): v for k, v in fields.items()})
    return {k: v for k, v in base.items() if v is not None}


def test_well_formed():
    job = parse_job(b"1-0", entry(), now=101.0)
    assert (job.entry_id, job.id, job.image, job.filename) == ("1-0", "abc", b"\xff\xd8", "x.jpg")
    assert (job.enqueued, job.deadline, job.top_k, job.picked, job.deliveries) == (100.5, 130.5, 3, 101.0, 1)
    assert "image" not in job.fields and job.fields["filename"] == "x.jpg"
    assert not job.expired(130.5) and job.expired(130.6)


@pytest.mark.parametrize(
    "raw,expected", [(b"0", 1), (b"-4", 1), (b"11", 10), (b"2.9", 2), (b"many", 5), (b"nan", 5), (None, 5)]
)
def test_top_k_is_clamped_or_defaulted(raw, expected):
    assert parse_job(b"1-0", entry(top_k=raw), 0.0).top_k == expected


@pytest.mark.parametrize("raw", [None, b"", b"soon", b"inf", b"nan"])
def test_missing_or_odd_deadline_never_expires(raw):
    assert parse_job(b"1-0", entry(deadline=raw), 0.0).deadline == math.inf


def test_missing_enqueued_time_counts_from_pickup():
    assert parse_job(b"1-0", entry(enqueued=None), 42.0).enqueued == 42.0


def test_the_request_id_names_the_job_in_the_log_cut_to_64_characters():
    job = parse_job(b"1-0", entry(rid=b"trace-1"), 0.0)
    assert job.request_id == "trace-1" and job.named == "abc (request trace-1, x.jpg)"
    assert parse_job(b"1-0", entry(rid=b"r" * 500), 0.0).request_id == "r" * 64
    assert parse_job(b"1-0", entry(), 0.0).named == "abc (request -, x.jpg)"
