"""Which keys hold another type of value than expected, against a real redis-server."""

from __future__ import annotations

import pytest
import redis

from resnet_common import key_types, protocol


def test_wrong_types_names_each_key_of_another_type_and_not_the_absent_ones(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    r.xadd("a-stream", {"f": "v"})
    r.set("a-string", "x")
    r.hset("a-hash", "f", "v")
    found = key_types.wrong_types(r, ["a-stream", "a-string", "a-hash", "absent"], "stream")
    assert found == {"a-string": "string", "a-hash": "hash"}
    assert key_types.wrong_types(r, ["a-hash", "absent"], "hash") == {}


def test_a_wrongtype_error_is_told_from_others(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    r.set("a-string", "x")
    try:
        r.xlen("a-string")
    except redis.ResponseError as exc:
        assert key_types.is_wrong_type(exc)
    pipe = r.pipeline(transaction=False).xlen("a-string")
    assert key_types.is_wrong_type(pipe.execute(raise_on_error=False)[0])  # as redis-py quotes it in a pipeline
    assert not key_types.is_wrong_type(redis.ResponseError("BUSYGROUP Consumer Group name already exists"))


def test_move_aside_moves_only_a_key_of_another_type_and_keeps_its_value_a_while(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    r.set("a-key", "a hand edit")
    assert key_types.move_aside(r, "a-key", "stream") == "string"
    assert not r.exists("a-key")
    aside = protocol.set_aside_key("a-key")
    assert r.get(aside) == b"a hand edit" and 0 < r.ttl(aside) <= protocol.SET_ASIDE_TTL_S
    r.hset("a-key", "f", "a later edit")
    assert key_types.move_aside(r, "a-key", "stream") == "hash"
    assert r.hget(aside, "f") == b"a later edit"  # the last stray value replaces the one before
    r.xadd("a-key", {"f": "v"})
    assert key_types.move_aside(r, "a-key", "stream") is None and r.xlen("a-key") == 1  # of its type: left alone
    assert key_types.move_aside(r, "absent", "stream") is None and not r.exists(protocol.set_aside_key("absent"))


def test_move_aside_raises_when_redis_refuses_the_rename(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    r.set("a-key", "a hand edit")
    with redis_server.denied("rename"), pytest.raises(redis.ResponseError):
        key_types.move_aside(r, "a-key", "stream")
    assert r.get("a-key") == b"a hand edit"
